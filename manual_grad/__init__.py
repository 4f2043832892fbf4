"""manual_grad: the gradients of jaxnn's networks derived by hand (BP1-BP4), never by autodiff.

- :func:`backprop` — BP1-BP4 for jaxnn.mlp networks (every activation, cost and L2);
- :func:`activation_prime`, :func:`output_delta` — sigma'(z) and BP1 on their own;
- :func:`conv2d` / :func:`conv2d_backward`, :func:`max_pool` / :func:`max_pool_backward`,
  :func:`avg_pool` / :func:`avg_pool_backward` — convolution and pooling layers by hand;
- :func:`softmax_backward`, :func:`maxout_backward`, :func:`dropout_backward`,
  :func:`flatten_backward` — the parameter-free layers; :func:`batch_norm_backward` — batch
  normalization in training mode (through the batch's mean and variance);
- :func:`cnn_backprop` — a whole jaxnn.layers CNN (conv -> activation [-> batch norm] -> pool
  ... -> softmax).

Only jax.numpy, jax.lax, jax.nn (sigmoid, softmax) and jax.random (dropout masks) are used:
no automatic differentiation (grad, vjp, jvp or any other transform).
"""

from manual_grad.backprop import backprop, speed_of_learning
from manual_grad.cnn import cnn_backprop
from manual_grad.conv import conv2d, conv2d_backward
from manual_grad.layers import (
    batch_norm_backward,
    dropout_backward,
    flatten_backward,
    maxout_backward,
    softmax_backward,
)
from manual_grad.output import cost_derivative, output_delta
from manual_grad.pool import avg_pool, avg_pool_backward, max_pool, max_pool_backward
from manual_grad.primes import activation_prime, prelu_alpha_prime

__all__ = [
    "activation_prime",
    "avg_pool",
    "avg_pool_backward",
    "backprop",
    "batch_norm_backward",
    "cnn_backprop",
    "conv2d",
    "conv2d_backward",
    "cost_derivative",
    "dropout_backward",
    "flatten_backward",
    "max_pool",
    "max_pool_backward",
    "maxout_backward",
    "output_delta",
    "prelu_alpha_prime",
    "softmax_backward",
    "speed_of_learning",
]
