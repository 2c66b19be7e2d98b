"""What you can do: plain async functions over a context, one module per capability."""
