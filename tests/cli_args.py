# cli_args.py: the argument every CLI-driven Python suite takes: --bin, the built
# blockbox program (made absolute), with the rest of the command line left for unittest;
# main() is such a suite's entry point.
import argparse
import os
import sys
import unittest


def binary_and_rest():
    """(absolute path of --bin, argv for unittest.main) from sys.argv."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    args, rest = parser.parse_known_args()
    return os.path.abspath(args.bin), [sys.argv[0]] + rest


def main(suite, **unittest_options):
    """A suite's `if __name__ == "__main__":` body: sets the module `suite`'s BIN from --bin,
    then runs its tests with unittest.main (the rest of the command line, the options)."""
    suite.BIN, argv = binary_and_rest()
    unittest.main(module=suite, argv=argv, **unittest_options)
