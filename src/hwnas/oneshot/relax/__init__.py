"""Differentiable architecture search: relaxed spaces, the published methods, their costs."""
