"""manual_grad: the gradients of jaxnn's networks derived by hand (BP1-BP4), never by autodiff."""

__all__: list[str] = []
