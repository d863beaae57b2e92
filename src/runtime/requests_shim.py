"""requests_shim.py: `requests` without a network. Roboflow's preamble imports
requests, so blocks may too; every call raises requests.exceptions.ConnectionError
that says why (blocks have no network in any backend)."""

import builtins
import types


_NO_NETWORK = ("blockbox: custom blocks have no network access, so requests.%s(%r) "
               "cannot connect")


def _requests_shim():
    """A module named `requests`: importable, with requests' exception classes, and
    every call raising requests.exceptions.ConnectionError that says why. The same
    in every backend (the jail and the Modal function have no network anyway)."""
    shim = types.ModuleType("requests", "blockbox stand-in for requests: blocks have no "
                                        "network, every request raises ConnectionError.")
    errors = types.ModuleType("requests.exceptions")

    class RequestException(IOError):
        def __init__(self, *args, **kwargs):
            self.response = kwargs.pop("response", None)
            self.request = kwargs.pop("request", None)
            IOError.__init__(self, *args)

    classes = {"RequestException": RequestException}
    for name, bases in (("ConnectionError", ("RequestException",)),
                        ("HTTPError", ("RequestException",)),
                        ("Timeout", ("RequestException",)),
                        ("ConnectTimeout", ("ConnectionError", "Timeout")),
                        ("ReadTimeout", ("Timeout",)),
                        ("TooManyRedirects", ("RequestException",)),
                        ("URLRequired", ("RequestException",)),
                        ("InvalidURL", ("RequestException", "ValueError")),
                        ("InvalidSchema", ("RequestException", "ValueError")),
                        ("MissingSchema", ("RequestException", "ValueError")),
                        ("JSONDecodeError", ("RequestException", "ValueError"))):
        parents = tuple(classes[b] if b in classes else getattr(builtins, b) for b in bases)
        classes[name] = type(name, parents, {"__module__": "requests.exceptions"})
    RequestException.__module__ = "requests.exceptions"
    for name, cls in classes.items():
        setattr(errors, name, cls)
        setattr(shim, name, cls)

    def refuse(method):
        def call(*args, **kwargs):
            url = args[0] if args else kwargs.get("url")
            if method == "request" and len(args) > 1:
                url = args[1]
            raise classes["ConnectionError"](_NO_NETWORK % (method, str(url)[:200]))
        call.__name__ = method
        return call

    methods = ("request", "get", "post", "put", "patch", "delete", "head", "options")
    for method in methods:
        setattr(shim, method, refuse(method))

    class Session:
        def __init__(self):
            self.headers = {}
            self.params = {}
            self.cookies = {}
            self.verify = True
            self.proxies = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return False

        def close(self):
            pass

        def mount(self, prefix, adapter):
            pass

    for method in methods:
        setattr(Session, method, staticmethod(refuse(method)))
    Session.__module__ = "requests"
    shim.Session = Session
    shim.session = Session
    shim.exceptions = errors
    # the submodules blocks import to configure a session (they never send anything)
    adapters = types.ModuleType("requests.adapters")
    auth = types.ModuleType("requests.auth")

    class HTTPAdapter:
        def __init__(self, *args, **kwargs):
            self.max_retries = kwargs.get("max_retries")

    class HTTPBasicAuth:
        def __init__(self, username, password):
            self.username, self.password = username, password

    adapters.HTTPAdapter = HTTPAdapter
    auth.HTTPBasicAuth = HTTPBasicAuth
    shim.adapters, shim.auth = adapters, auth
    shim._submodules = {"requests.exceptions": errors, "requests.adapters": adapters,
                        "requests.auth": auth}
    shim.codes = types.SimpleNamespace(ok=200, created=201, no_content=204, bad_request=400,
                                       unauthorized=401, forbidden=403, not_found=404,
                                       too_many_requests=429, internal_server_error=500)
    shim.__version__ = "0+blockbox"
    return shim


requests = _requests_shim()
