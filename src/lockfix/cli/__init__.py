"""The command line: a thin shell over :mod:`lockfix.engine`."""
