"""Custom metric formulas: tokenizer, parser, AST and evaluation."""
