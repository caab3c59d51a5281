"""Pure functions returning Dash component trees, one module per tab."""
