# Reference output of forecast::auto.arima (forecast 8.20, R 4.2.2; Debian packages
# r-base-core and r-cran-forecast) for tests/its/test_arima_r.py: the order of the errors
# chosen on an ITS pre-period, with the segmented design's pre-period terms (a linear
# trend; auto.arima adds the intercept) as xreg, searching every model (stepwise = FALSE,
# approximation = FALSE) with p, q <= 3, P, Q <= 1 and p + q + P + Q <= 5.
# Run from the repository root:
#   Rscript tests/results/r_auto_arima.R ../shared/validation/data > tests/results/r_auto_arima.csv
suppressMessages(library(forecast))
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[1] else "../shared/validation/data"
choose <- function(name, y) {
  f <- auto.arima(y, xreg = cbind(time = seq_along(y)), stepwise = FALSE, approximation = FALSE,
                  max.p = 3, max.q = 3, max.P = 1, max.Q = 1, max.order = 5)
  o <- arimaorder(f)
  data.frame(example = name, p = o[["p"]], d = o[["d"]], q = o[["q"]], P = o[["P"]], D = o[["D"]], Q = o[["Q"]],
             period = o[["Frequency"]], loglik = f$loglik, aicc = f$aicc)
}
# Pre-periods of the deaths (before the placebo interruption 2016-01) and seat-belt
# (before the law, 1983-02) examples of r_arima.R.
d <- read.csv(file.path(dir, "causalpy_covid_deaths_england_wales.csv"))
deaths <- ts(d$deaths[d$date < "2016-01-01"], start = c(2006, 1), frequency = 12)
s <- read.csv(file.path(dir, "seatbelts_uk.csv"))
seatbelts <- ts(log(s$drivers[s$date < "1983-02"]), start = c(1969, 1), frequency = 12)
write.csv(rbind(choose("deaths", deaths), choose("seatbelts", seatbelts)), stdout(), row.names = FALSE)
