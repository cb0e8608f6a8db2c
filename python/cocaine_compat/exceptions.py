"""Exceptions a handler can see, named as in the cocaine framework."""


class CocaineError(Exception):
    pass


class ChokeEvent(CocaineError):
    """The request stream was closed by the engine: no more chunks."""


class RequestError(CocaineError):
    """The engine sent an error on the request stream."""

    def __init__(self, category: int, code: int, reason: str):
        super().__init__(f"[{category}, {code}]: {reason}")
        self.category = category
        self.code = code
        self.reason = reason


class InvalidChunk(CocaineError, TypeError):
    """``response.write`` was given something other than str or bytes."""


class ClosedError(CocaineError):
    """The response stream is already closed."""


class TimeoutError(CocaineError):  # noqa: A001 - framework name
    pass


class DisownedError(CocaineError):
    pass
