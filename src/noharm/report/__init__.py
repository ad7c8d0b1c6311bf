"""Tables (Markdown/CSV) of protocol results."""
from .plots import bias_scatter, forest_plot
from .tables import (accuracy_table, certificate_table, compact_table, markdown_report,
                     markdown_table, secondary_table)

__all__ = ["accuracy_table", "certificate_table", "compact_table", "secondary_table",
           "markdown_report", "markdown_table",
           "forest_plot", "bias_scatter"]
