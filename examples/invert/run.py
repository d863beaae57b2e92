# An example custom block: inverts an image, counts the bright pixels of the result
# and returns both (the image comes back as a workflow_image).
def run(self, image: WorkflowImageData, threshold: int) -> BlockResult:
    inverted = 255 - image.numpy_image
    gray = cv2.cvtColor(inverted, cv2.COLOR_BGR2GRAY)
    bright = int(np.count_nonzero(gray > threshold))
    print(f"inverted a {image.numpy_image.shape[1]}x{image.numpy_image.shape[0]} image")
    return {
        "inverted": WorkflowImageData.copy_and_replace(origin_image_data=image, numpy_image=inverted),
        "bright_pixels": bright,
        "shape": list(inverted.shape),
    }
