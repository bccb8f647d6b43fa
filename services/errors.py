"""Domain errors; the web layer maps each to its HTTP status."""


class FerryError(Exception):
    """Base of errors a user caused or can act on; str(error) is the message shown."""

    status = 400


class Invalid(FerryError):
    status = 400


class NotFound(FerryError):
    status = 404


class Conflict(FerryError):
    status = 409


class Forbidden(FerryError):
    status = 403


class Unavailable(FerryError):
    """Ferry cannot do it now (it is shutting down); trying again later may work."""

    status = 503
