"""What a command printed when it failed as it should: one `deepscope: error:` line, no traceback."""


def one_error_line(capsys):
    """The single ``deepscope: error:`` line on stderr; fails on none, several, or a traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("deepscope: error:")]
    assert len(lines) == 1 and "Traceback" not in err
    return lines[0]
