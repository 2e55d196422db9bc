"""Registry of the plan's facts: annex indicators, reporting provinces and the policy timeline.

Sources: 全面提升医疗质量行动计划（2023—2025年）and its annex 各省行动效果监测指标体系
(国卫医政发〔2023〕12号, 2023-05-26). English names are working translations.
"""

from analysis.registry import timeline
from analysis.registry.indicators import Indicator, get_indicator, indicators, quantitative_indicators
from analysis.registry.provinces import Province, get_province, provinces

__all__ = [
    "Indicator",
    "Province",
    "get_indicator",
    "get_province",
    "indicators",
    "provinces",
    "quantitative_indicators",
    "timeline",
]
