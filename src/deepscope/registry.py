"""Model registry: ``@register_model``, :func:`create_model`, :func:`list_models`.

Models are looked up by name so that checkpoints can store plain data (a name
and keyword arguments) instead of pickled code.
"""

from deepscope.errors import ModelError

_MODELS = {}


def register_model(fn):
    """Register a model factory under its function name.

    Parameters
    ----------
    fn : callable
        Factory returning a ``torch.nn.Module``; keyword arguments only.

    Returns
    -------
    callable
        ``fn`` itself, so this works as a decorator.
    """
    name = fn.__name__
    if name in _MODELS:
        msg = f"model {name!r} is registered twice"
        raise ModelError(msg)
    _MODELS[name] = fn
    return fn


def _import_domain_models():
    # Domains register their models on import; importing them here keeps the
    # registry complete without the core importing a domain at module level.
    import importlib

    for domain in ("galaxy", "spectra", "cryoem"):
        try:
            importlib.import_module(f"deepscope.{domain}.models")
        except ModuleNotFoundError as exc:
            if exc.name != f"deepscope.{domain}.models":
                raise


def list_models():
    """Names of every registered model, sorted.

    Returns
    -------
    list of str
    """
    _import_domain_models()
    return sorted(_MODELS)


def create_model(name, **kwargs):
    """Build a registered model.

    Parameters
    ----------
    name : str
        Registered model name.
    **kwargs
        Passed to the model factory.

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    ModelError
        If ``name`` is not registered; the message lists the known models.
    """
    _import_domain_models()
    if name not in _MODELS:
        msg = f"unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}"
        raise ModelError(msg)
    return _MODELS[name](**kwargs)
