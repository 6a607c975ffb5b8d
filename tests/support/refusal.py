"""What a deploy that refuses its input says, as the command line shows it: one line, exit 1."""
import io

from provision import deploy
from provision.engine import Options
from provision.errors import UserError
from provision.report import Reporter


def deploy_refusal(sources, options: Options | None = None, **kwargs) -> list[str]:
    """The lines a refused deploy prints (the CLI's `error: ...` line), after checking it raised
    a UserError and reported nothing else."""
    out = io.StringIO()
    try:
        code = deploy.deploy(sources, options or Options(), reporter=Reporter(stream=out), **kwargs)
    except UserError as exc:
        assert out.getvalue() == "", out.getvalue()
        return [f"error: {exc}"]
    raise AssertionError(f"deploy went ahead (exit {code}): {out.getvalue()[-2000:]}")
