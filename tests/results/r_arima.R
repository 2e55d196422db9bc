# Reference output of R's stats::arima (exact maximum likelihood, method "CSS-ML") for
# tests/its/test_arima_r.py. Run from the repository root with the shared validation data
# beside it:  Rscript tests/results/r_arima.R ../shared/validation/data > tests/results/r_arima.csv
# (R 4.2.2, Debian package r-base-core 4.2.2.20221110-2; the output is committed beside this script.)
# Each model is a segmented regression with ARIMA errors: xreg = step (1 from the first
# post-interruption period) and ramp (1, 2, ... from that period), as in Schaffer et al.,
# BMC Med Res Methodol 2021;21:58 (their supplementary R code).
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[1] else "../shared/validation/data"
out <- NULL
emit <- function(name, fit) {
  co <- coef(fit); se <- sqrt(diag(fit$var.coef))
  rows <- data.frame(example = name, term = c(names(co), "sigma2", "loglik", "aic"),
                     estimate = c(unname(co), fit$sigma2, fit$loglik, fit$aic),
                     se = c(unname(se), NA, NA, NA))
  out <<- rbind(out, rows)
}
segments <- function(n, first_post) {
  step <- as.numeric(seq_len(n) >= first_post)
  cbind(step = step, ramp = cumsum(step))
}
# A: monthly deaths in England and Wales (tens of thousands), 2006-01 .. 2019-12 (before
#    COVID-19), with a placebo interruption at 2016-01 (no intervention: a test of the
#    estimator, not of a policy); ARIMA(2,1,0)(0,1,1)12, the model of Schaffer et al.
d <- read.csv(file.path(dir, "causalpy_covid_deaths_england_wales.csv"))
d <- d[d$date < "2020-01-01", ]
y <- ts(d$deaths, start = c(2006, 1), frequency = 12)
emit("deaths", arima(y, order = c(2, 1, 0), seasonal = list(order = c(0, 1, 1), period = 12),
                     xreg = segments(length(y), which(d$date == "2016-01-01"))))
# B: annual per-capita cigarette sales in California (log), 1970 .. 2000, Proposition 99
#    from 1989; AR(1) errors with a constant (include.mean) and the pre-period trend (time 0 in
#    1989, as the package counts it, so that the intercepts agree).
p <- read.csv(file.path(dir, "prop99_cigsale_wide.csv"), check.names = FALSE)
emit("prop99", arima(log(p$California), order = c(1, 0, 0),
                     xreg = cbind(time = seq_len(nrow(p)) - which(p$Year == 1989), segments(nrow(p), which(p$Year == 1989)))))
# C: UK car drivers killed or seriously injured (log), 1969-01 .. 1984-12, seat-belt law
#    from 1983-02; ARIMA(0,1,1)(0,1,1)12 (MA terms only).
s <- read.csv(file.path(dir, "seatbelts_uk.csv"))
emit("seatbelts", arima(log(s$drivers), order = c(0, 1, 1), seasonal = list(order = c(0, 1, 1), period = 12),
                        xreg = segments(nrow(s), which(s$date == "1983-02"))))
write.csv(out, stdout(), row.names = FALSE)
