"""Whether a request's params fit its handler, checked before the handler runs.

A handler is called as `handler(session, *params)` or `handler(session,
**params)`.  Its signature says how many positional arguments it takes and
which names; a request that does not fit gets RPCError(INVALID_PARAMS)
naming the method and what it accepts ("blockchain.block.header takes 1 to 2
arguments, 3 given"), rather than Python's TypeError, which names the
handler's class and counts `self` and the session.  A TypeError raised
inside a handler's body is a bug, and is left to surface as one.
"""

import inspect
from functools import lru_cache

from electrumx.protocol.errors import INVALID_PARAMS, RPCError
from electrumx.protocol.methods.params import shown

HANDLERS_CACHED = 1024
"""Signatures kept: far more than there are handlers (a few dozen bound methods)."""


class Accepted:
    """What a handler accepts after its session argument."""

    __slots__ = ("fewest", "most", "names", "required", "any_names", "session_name")

    def __init__(self, fewest: int, most, names: frozenset, required: tuple, any_names: bool,
                 session_name: str):
        self.fewest = fewest
        self.most = most
        """Most positional arguments; None when it takes any number."""
        self.names = names
        self.required = required
        self.any_names = any_names
        """Whether it takes any other name too (**kwargs)."""
        self.session_name = session_name
        """The name of its session argument, which a client cannot pass."""


@lru_cache(maxsize=HANDLERS_CACHED)
def accepted(handler) -> Accepted:
    """The arguments `handler(session, ...)` accepts, read once from its signature."""
    session, *parameters = inspect.signature(handler).parameters.values()
    positional = [p for p in parameters
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    kinds = {p.kind for p in parameters}
    named = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return Accepted(
        fewest=sum(p.default is p.empty for p in positional),
        most=None if inspect.Parameter.VAR_POSITIONAL in kinds else len(positional),
        names=frozenset(p.name for p in named),
        required=tuple(p.name for p in named if p.default is p.empty),
        any_names=inspect.Parameter.VAR_KEYWORD in kinds,
        session_name=session.name)


def check(method: str, handler, params):
    """Raise RPCError(INVALID_PARAMS) unless `params` (a list or a dict) fit `handler`."""
    takes = accepted(handler)
    if type(params) is list:
        given = len(params)
        if given < takes.fewest or (takes.most is not None and given > takes.most):
            raise RPCError(INVALID_PARAMS, f"{method} takes {_counted(takes)}, {given} given")
        return
    for name in params:
        if name not in takes.names and (not takes.any_names or name == takes.session_name):
            raise RPCError(INVALID_PARAMS, f"{method} has no argument named {shown(name)}")
    for name in takes.required:
        if name not in params:
            raise RPCError(INVALID_PARAMS, f"{method} needs the argument {name!r}")


def _counted(takes: Accepted) -> str:
    if takes.most is None:
        return f"at least {_arguments(takes.fewest)}"
    if takes.fewest == takes.most:
        return _arguments(takes.most) if takes.most else "no arguments"
    return f"{takes.fewest} to {_arguments(takes.most)}"


def _arguments(count: int) -> str:
    return f"{count} argument" if count == 1 else f"{count} arguments"
