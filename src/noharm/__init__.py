"""noharm: personalize clinical prediction models without harm, audit personalization,
and debias trained networks."""
__version__ = "0.1.0"

from .errors import NoharmError  # noqa: E402

__all__ = ["NoharmError", "__version__"]
