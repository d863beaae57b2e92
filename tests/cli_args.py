# cli_args.py: the argument every CLI-driven Python suite takes: --bin, the built
# blockbox program (made absolute), with the rest of the command line left for unittest.
import argparse
import os
import sys


def binary_and_rest():
    """(absolute path of --bin, argv for unittest.main) from sys.argv."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    args, rest = parser.parse_known_args()
    return os.path.abspath(args.bin), [sys.argv[0]] + rest
