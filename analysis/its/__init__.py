"""Interrupted time-series: design matrices, models, covariance estimators, effects, diagnostics."""

from analysis.its.design import ITSDesign
from analysis.its.diagnostics import Diagnostics, diagnose
from analysis.its.forecast import ForecastITS, ForecastResults
from analysis.its.model import SegmentedRegression
from analysis.its.results import ITSResults

__all__ = [
    "Diagnostics",
    "ForecastITS",
    "ForecastResults",
    "ITSDesign",
    "ITSResults",
    "SegmentedRegression",
    "diagnose",
]
