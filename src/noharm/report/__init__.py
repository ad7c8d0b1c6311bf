"""Tables (Markdown/CSV) of protocol results."""
from .tables import accuracy_table, markdown_report, secondary_table

__all__ = ["accuracy_table", "secondary_table", "markdown_report"]
