"""Alert rules, their evaluation and the webhooks that tell."""
