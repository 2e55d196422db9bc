"""The rules input data are checked against: name, severity, what each checks, how to fix it.

One catalogue, so that every problem carries the same rule name, severity and advice
wherever it is raised, and so that the README, the ``validate`` report and the tests
can list the rules from one place. Errors make data unusable; warnings are reported
and do not block.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.data.problems import Problem


@dataclass(frozen=True)
class Rule:
    """One rule: ``name`` (as in reports), ``severity``, ``checks`` (what it tests) and
    ``fix`` (the usual remedy, shown with every problem)."""

    name: str
    severity: str
    checks: str
    fix: str


_CATALOGUE = [
    # -- files and tables ----------------------------------------------------------------------
    Rule("unreadable-file", "error", "the file can be opened and parsed (CSV, Excel .xlsx, Parquet)",
         "save the file again as .xlsx, UTF-8 CSV or Parquet"),
    Rule("unsupported-file-type", "error", "the file type is one the reader knows",
         "use .csv, .txt, .tsv, .xlsx, .xlsm or .parquet (save .xls files as .xlsx)"),
    Rule("encoding", "error", "a text file is UTF-8 (with or without BOM), UTF-16 with BOM, or GBK/GB18030",
         "save the file as UTF-8 CSV"),
    Rule("ragged-row", "error", "every CSV line has no more fields than the header",
         "remove the extra fields, or quote values that contain the delimiter"),
    Rule("multiline-field", "error", "no CSV field runs over several lines (an unclosed quote joins the lines "
         "after it into one value)", "remove the stray quote character (\"), or close the quote on the same line"),
    Rule("no-header", "error", "a sheet with data has a header row naming province, indicator and month",
         "add a header row: 省份/province, 指标/indicator, 月份/month, 分子/numerator, 分母/denominator, 数值/value"),
    Rule("missing-column", "error", "the columns the layout needs are present",
         "add the missing column (see the template: python -m analysis template)"),
    Rule("duplicate-column", "error", "each column appears once",
         "keep one of the columns, or rename the other"),
    Rule("ambiguous-column", "error", "a header names one column only",
         "write one name per header (e.g. '分子 / numerator')"),
    Rule("unknown-column", "warning", "columns outside the data contract (they are ignored)",
         "rename the column if it holds data the contract expects; otherwise nothing to do"),
    Rule("empty", "error", "a file or sheet has data rows", "fill in the data, or leave the file out"),
    Rule("blank-rows", "warning", "rows with no numerator, denominator or value (they are skipped)",
         "nothing to do if the months are not yet available; otherwise fill them in"),
    Rule("repeated-header", "warning", "a header row repeated inside the data (it is skipped)",
         "delete the repeated header row"),
    # -- keys ----------------------------------------------------------------------------------
    Rule("unknown-province", "error", "the province is a GB/T 2260 code, a full or short Chinese name, or an "
         "English name of one of the 32 reporting units",
         "write the code (e.g. 340000) or the name as in the template's province sheet"),
    Rule("unknown-indicator", "error", "the indicator is an annex number (9-39) or an annex name, exactly",
         "write the annex number (e.g. 32) as in the template's indicator sheet"),
    Rule("ambiguous-indicator", "error", "an indicator name matches exactly one annex indicator",
         "write the annex number instead of the name"),
    Rule("indicator-name-mismatch", "error", "the indicator name column agrees with the indicator number",
         "correct the number or the name so that they name the same indicator"),
    Rule("status-indicator", "error", "status items ('/' in the annex, 1-8 and 40) are not given as monthly series",
         "remove these rows; status items are not time series"),
    Rule("bad-month", "error", "the month is written YYYY-MM, YYYY/M, YYYYMM, YYYY年M月, or as a date on the "
         "first day of the month", "write the month as YYYY-MM (e.g. 2023-06)"),
    Rule("unknown-field", "error", "the item column says numerator, denominator or value (分子, 分母, 数值)",
         "write 分子/numerator, 分母/denominator or 数值/value"),
    Rule("wide-needs-field", "error", "a table with months as columns says which item each row holds when "
         "the indicator needs counts", "add an item column (项目/field) with 分子/numerator and 分母/denominator rows"),
    # -- values --------------------------------------------------------------------------------
    Rule("missing-count", "error", "proportion and rate indicators have both counts (an empty cell is not 0)",
         "give the count; write 0 if there were none"),
    Rule("not-a-number", "error", "numbers are numbers (thousands separators and full-width digits are fine)",
         "write the number with digits only, e.g. 1234 or 1,234"),
    Rule("negative-count", "error", "counts are not negative", "give the number of cases, 0 or more"),
    Rule("non-integer-count", "error", "counts are whole numbers", "give the number of cases, not a rate or a mean"),
    Rule("missing-value", "error", "mean indicators have a numeric value", "give the monthly mean in the value column"),
    Rule("percent-not-allowed", "error", "a percent or per-mille mark is used only for proportion values and only in "
         "the value column", "give counts, or a value in the indicator's unit without the mark"),
    Rule("percent-needs-denominator", "error", "a proportion or rate given as a value has its denominator, so that "
         "the count can be recovered", "give the denominator (or the numerator and denominator)"),
    Rule("value-not-a-count", "error", "a proportion or rate given as a value and a denominator implies a whole "
         "number of events", "give the numerator itself, or the value with more decimals"),
    Rule("value-disagrees-with-counts", "error", "a value given next to counts agrees with them",
         "correct the value or the counts, or leave the value empty"),
    Rule("unit-mismatch", "error", "the unit column fits the indicator", "use the indicator's unit (see the template)"),
    Rule("mixed-units", "error", "one series uses one unit throughout (e.g. not ‰ in some months and % in others)",
         "write every month of the series in the same unit"),
    Rule("value-out-of-range", "error", "a value is possible for the indicator (a proportion 0-100%, a time or "
         "count not negative, a case mix index above 0)", "correct the value"),
    Rule("numerator-exceeds-denominator", "error", "a proportion's numerator is not larger than its denominator",
         "check that numerator and denominator are not swapped or from different definitions"),
    Rule("zero-denominator", "error", "a denominator is not 0",
         "give the month's real denominator (cases or exposure); a month without any cannot be modelled"),
    # -- series --------------------------------------------------------------------------------
    Rule("duplicate-month", "error", "a province x indicator x month appears once",
         "keep one of the rows (or the one row per item of a table with an item column)"),
    Rule("missing-months", "error", "a series has every month from its first to its last",
         "fill in the missing months (a gap is never imputed)"),
    Rule("too-few-points", "error", "a series has at least the minimum number of fitted months before and after "
         "the province's plan start", "give more months, or leave the series out"),
    Rule("few-points", "warning", "a series has the recommended number of fitted months before and after the "
         "plan start", "give more months if they exist; trend and slope-change estimates are unreliable"),
    Rule("implausible-jump", "warning", "month-to-month changes are not extreme for the series (robust z-score of "
         "the change)", "check the month's numbers; a real shock needs no change"),
    Rule("definition-change-shift", "warning", "a series does not shift level at a month listed as a change of "
         "definition", "analyse the months after the change only, or model the change; otherwise it is "
         "confounded with the plan's effect"),
    Rule("schema", "error", "the checked panel matches the canonical schema (an internal guarantee)",
         "report this as a bug in the package, with the input file"),
    # -- side tables ---------------------------------------------------------------------------
    Rule("duplicate-province", "error", "a province has one start month in the plan-dates table",
         "keep one row per province"),
    # -- comparison series (comparison_series.csv) ----------------------------------------------
    Rule("bad-series-name", "error", "a comparison series has a name, and the name is not an annex number "
         "(comparisons.csv names annex indicators by number)",
         "give the series a descriptive name, e.g. 'CMI, hospitals outside the first wave'"),
    Rule("unknown-measure", "error", "a comparison series declares its measure: proportion, rate or mean",
         "write proportion, rate or mean: the measure of the indicator it is compared with"),
    Rule("mixed-measure", "error", "a comparison series has one measure in every row",
         "use one measure for the whole series, or give the rows different series names"),
    Rule("comparison-items", "error", "a comparison series gives the items of its measure: numerator and "
         "denominator for a proportion or rate, a value (and optionally the denominator) for a mean",
         "give counts for a proportion or rate and leave the value empty; give the value for a mean and leave "
         "the numerator empty"),
]

#: All rules by name.
RULES: dict[str, Rule] = {rule.name: rule for rule in _CATALOGUE}


def problem(rule: str, file: str, *, sheet: str | None = None, row: int | None = None, column: str | None = None,
            value: str | None = None, message: str, fix: str | None = None, province: str | None = None,
            indicator: int | None = None, month: str | None = None) -> Problem:
    """A :class:`Problem` breaking ``rule``, with the rule's severity and (unless given) its fix."""
    spec = RULES[rule]
    return Problem(file=file, row=row, column=column, value=value, rule=rule, message=message,
                   severity=spec.severity, sheet=sheet, fix=spec.fix if fix is None else fix,
                   province=province, indicator=indicator, month=month)


def rules_table():
    """The catalogue as a table (``name``, ``severity``, ``checks``, ``fix``)."""
    import pandas as pd

    return pd.DataFrame([vars(rule) for rule in _CATALOGUE])
