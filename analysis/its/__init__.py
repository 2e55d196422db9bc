"""Interrupted time-series: design matrices, models, covariance estimators, effects, diagnostics."""

from analysis.its.design import ITSDesign
from analysis.its.model import SegmentedRegression
from analysis.its.results import ITSResults

__all__ = ["ITSDesign", "ITSResults", "SegmentedRegression"]
