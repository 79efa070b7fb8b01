"""The commands of the command line, by what they work on; pfharness/cli.py puts them together."""
