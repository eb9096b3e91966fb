"""Frontend errors."""
from ..lang.errors import AlloError


class UnsupportedOpError(AlloError, NotImplementedError):
    """A torch op with no registered lowering (or one whose lowering refuses these arguments). The
    message names the op, the model's source line and what to do about it."""

    def __init__(self, target: str, node=None, detail: str = "", has_lowering: bool = False):
        where = user_frame(node)
        if has_lowering:
            msg = (f"the lowering of torch op '{target}' does not support these arguments"
                   + (f": {detail}" if detail else "")
                   + (f"\n  at {where}" if where else ""))
        else:
            msg = (f"no lowering for torch op '{target}'"
                   + (f" ({detail})" if detail else "")
                   + (f"\n  at {where}" if where else "")
                   + "\n  register one with:\n"
                   f"    @allo_ext.frontend.register_lowering(\"{target}\")\n"
                   "    def lower(ctx, node, *args, **kwargs):\n"
                   "        return ctx.call(my_kernel(float32, ...), *args)")
        super().__init__(msg)
        self.target = target


class BatchMixingError(AlloError, ValueError):
    """The model's result for one jet depends on other jets of the batch (an op reduces over the batch)."""


def user_frame(node) -> str:
    """The innermost line of the user's model from the node's stack trace (torch's own frames skipped)."""
    if node is None:
        return ""
    trace = node.meta.get("stack_trace") or ""
    lines = [ln.strip() for ln in trace.splitlines()]
    frames = [(lines[i], lines[i + 1] if i + 1 < len(lines) else "")
              for i, ln in enumerate(lines) if ln.startswith('File "')]
    user = [f for f in frames if "/torch/" not in f[0]]
    if not user:
        return ""
    loc, code = user[-1]
    return f"{loc}: {code}" if code else loc


_user_frame = user_frame


class ModelExportError(AlloError, ValueError):
    """The model cannot be exported as one fixed graph (data-dependent control flow, batch
    statistics, float64); the message names the cause, the model line when known, and the fix."""
