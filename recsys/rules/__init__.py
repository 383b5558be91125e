"""Merchandiser rules: the rule model, the compiled engine, mining of suggestions from order
history, and the default rules for the sample world."""

from recsys.rules.engine import RuleEngine
from recsys.rules.model import FieldError, Rule, RuleValidationError, parse_rule

__all__ = ["FieldError", "Rule", "RuleEngine", "RuleValidationError", "parse_rule"]
