"""Reports: plots (matplotlib, MNE topomaps) and a self-contained HTML page."""

from csbrain.report.html import write_html_report
from csbrain.report.plots import (
                                  plot_confusion,
                                  plot_curves,
                                  plot_reconstruction,
                                  plot_roc,
                                  plot_topomap_importance,
)

__all__ = ["write_html_report", "plot_confusion", "plot_curves", "plot_reconstruction", "plot_roc",
           "plot_topomap_importance"]
