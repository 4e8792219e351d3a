//! Unconstrained minimisation for the CLV fits: BFGS (dense inverse-Hessian update, which for the
//! 3-4 parameters here is L-BFGS with unlimited memory) with a strong-Wolfe line search
//! (Nocedal & Wright 2006, Algorithms 3.5-3.6), plus a numerical Hessian of an analytic gradient
//! and a Cholesky inverse for standard errors. Nothing here panics.

/// Stopping rules for [`minimize_bfgs`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimOptions {
    /// Maximum number of BFGS iterations.
    pub max_iter: usize,
    /// Converged when the largest absolute gradient component is at most this.
    pub gtol: f64,
    /// Converged when |f_k - f_{k+1}| <= ftol * max(1, |f_k|) (relative objective change).
    pub ftol: f64,
}

impl Default for OptimOptions {
    fn default() -> Self {
        OptimOptions {
            max_iter: 500,
            gtol: 1e-8,
            ftol: 1e-14,
        }
    }
}

/// Outcome of [`minimize_bfgs`]: the last accepted point and why the search stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimResult {
    /// Last accepted point.
    pub x: Vec<f64>,
    /// Objective at `x`.
    pub f: f64,
    /// Gradient at `x`.
    pub grad: Vec<f64>,
    /// BFGS iterations performed.
    pub iterations: usize,
    /// Objective/gradient evaluations performed.
    pub evaluations: usize,
    /// True when a convergence test was met.
    pub converged: bool,
    /// Why the search stopped without converging (None when converged).
    pub reason: Option<String>,
    /// Final BFGS inverse-Hessian approximation (row-major n x n), reusable as a warm start.
    pub inv_hessian: Vec<f64>,
}

impl OptimResult {
    /// A converged Newton result: `iterations` steps, one evaluation more than steps.
    pub fn newton(x: Vec<f64>, f: f64, grad: Vec<f64>, iterations: usize) -> OptimResult {
        OptimResult {
            x,
            f,
            grad,
            iterations,
            evaluations: iterations + 1,
            converged: true,
            reason: None,
            inv_hessian: Vec::new(),
        }
    }
}

/// Newton's method with a backtracking (Armijo) line search on `fgh` (objective, gradient and
/// Hessian at a point), from a point near the optimum: quadratic convergence in a handful of
/// evaluations. Returns the point, its objective, gradient, the iterations and the Hessian
/// there (so a caller needs no further pass over the data for them), or None
/// if a Hessian on the way is not positive definite or the search stalls (the caller then runs
/// BFGS). Points with a component beyond `max_abs` are not tried.
#[allow(clippy::type_complexity)]
pub fn newton<const N: usize, F>(
    mut fgh: F,
    start: &[f64],
    opts: &OptimOptions,
    max_abs: f64,
) -> Option<(Vec<f64>, f64, [f64; N], usize, [[f64; N]; N])>
where
    F: FnMut(&[f64]) -> (f64, [f64; N], [[f64; N]; N]),
{
    let mut x = start.to_vec();
    let (mut f, mut g, mut h) = fgh(&x);
    for it in 0..opts.max_iter.min(100) {
        if !f.is_finite() {
            return None;
        }
        if norm_inf(&g) <= opts.gtol {
            return Some((x, f, g, it, h));
        }
        let inv = invert_spd(&h.iter().map(|r| r.to_vec()).collect::<Vec<_>>())?;
        let step: Vec<f64> = (0..N)
            .map(|i| -(0..N).map(|j| inv[i][j] * g[j]).sum::<f64>())
            .collect();
        let slope: f64 = step.iter().zip(&g).map(|(a, b)| a * b).sum();
        // Next to the optimum the decrease Newton predicts (-slope) is below the rounding of f
        // (a sum over up to millions of rows), and the Armijo test then rejects good steps at
        // random: there a step is taken when it shrinks the gradient instead.
        let rounding_regime = -slope <= 1e-12 * f.abs().max(1.0);
        let g_norm = norm_inf(&g);
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            let xn: Vec<f64> = x.iter().zip(&step).map(|(a, b)| a + t * b).collect();
            if xn.iter().any(|v| !v.is_finite() || v.abs() > max_abs) {
                t *= 0.5;
                continue;
            }
            let (fn_, gn, hn) = fgh(&xn);
            let armijo = fn_ <= f + 1e-4 * t * slope + 1e-15 * f.abs();
            if fn_.is_finite() && (armijo || rounding_regime && norm_inf(&gn) < g_norm) {
                (x, f, g, h) = (xn, fn_, gn, hn);
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            return None;
        }
    }
    (norm_inf(&g) <= opts.gtol).then_some((x, f, g, opts.max_iter.min(100), h))
}

/// Largest absolute component (infinity norm); NaN if any component is NaN.
pub fn norm_inf(v: &[f64]) -> f64 {
    let mut m = 0.0f64;
    for &x in v {
        if x.is_nan() {
            return f64::NAN;
        }
        m = m.max(x.abs());
    }
    m
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A point evaluated by the line search.
struct Eval {
    x: Vec<f64>,
    f: f64,
    g: Vec<f64>,
}

/// Minimises `fg` (which returns f(x) and writes the gradient into its second argument) from
/// `x0` by BFGS with a strong-Wolfe line search (c1 = 1e-4, c2 = 0.9). Non-finite objective
/// values are treated as +inf, so the line search backs away from them.
pub fn minimize_bfgs<F>(fg: F, x0: &[f64], opts: &OptimOptions) -> OptimResult
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    minimize_bfgs_from(fg, x0, None, opts)
}

/// [`minimize_bfgs`] with an optional initial inverse-Hessian approximation (row-major n x n,
/// e.g. from a fit on a subsample); ignored unless it has n*n finite entries.
pub fn minimize_bfgs_from<F>(
    mut fg: F,
    x0: &[f64],
    h0: Option<&[f64]>,
    opts: &OptimOptions,
) -> OptimResult
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let mut evaluations = 0usize;
    let mut g = vec![0.0; n];
    let mut f = fg(x0, &mut g);
    evaluations += 1;
    let mut x = x0.to_vec();
    let fail = |x: Vec<f64>, f: f64, g: Vec<f64>, it: usize, ev: usize, why: String| OptimResult {
        x,
        f,
        grad: g,
        iterations: it,
        evaluations: ev,
        converged: false,
        reason: Some(why),
        inv_hessian: Vec::new(),
    };
    if n == 0 {
        return fail(x, f, g, 0, evaluations, "no parameters".into());
    }
    if !f.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return fail(
            x,
            f,
            g,
            0,
            evaluations,
            "non-finite objective or gradient at the starting point".into(),
        );
    }
    let identity = |n: usize| -> Vec<f64> {
        let mut h = vec![0.0; n * n];
        for i in 0..n {
            h[i * n + i] = 1.0;
        }
        h
    };
    let mut h = identity(n);
    let mut h_is_identity = true;
    let mut first_update = true;
    if let Some(h0) = h0.filter(|h0| h0.len() == n * n && h0.iter().all(|v| v.is_finite())) {
        h = h0.to_vec();
        h_is_identity = false;
        first_update = false;
    }
    for it in 0..opts.max_iter {
        if norm_inf(&g) <= opts.gtol {
            return OptimResult {
                x,
                f,
                grad: g,
                iterations: it,
                evaluations,
                converged: true,
                reason: None,
                inv_hessian: h,
            };
        }
        // Search direction p = -H g.
        let mut p: Vec<f64> = (0..n)
            .map(|i| -(0..n).map(|j| h[i * n + j] * g[j]).sum::<f64>())
            .collect();
        let mut slope = dot(&p, &g);
        if !(slope < 0.0) {
            h = identity(n);
            h_is_identity = true;
            p = g.iter().map(|v| -v).collect();
            slope = dot(&p, &g);
        }
        // First step on a steepest-descent direction: limit the move to about one unit.
        let step0 = if h_is_identity {
            (1.0 / norm_inf(&p)).min(1.0)
        } else {
            1.0
        };
        let ls = wolfe_line_search(&mut fg, &x, f, &g, &p, slope, step0, &mut evaluations);
        let new = match ls {
            Some(e) => e,
            None => {
                if !h_is_identity {
                    // Retry along steepest descent with a fresh Hessian approximation.
                    h = identity(n);
                    h_is_identity = true;
                    first_update = true;
                    continue;
                }
                let gn = norm_inf(&g);
                return fail(
                    x,
                    f,
                    g,
                    it,
                    evaluations,
                    format!(
                        "line search failed to find a point satisfying the Wolfe conditions (gradient norm {gn:.2e})"
                    ),
                );
            }
        };
        let s: Vec<f64> = new.x.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = new.g.iter().zip(&g).map(|(a, b)| a - b).collect();
        let f_change = (f - new.f).abs();
        let f_scale = f.abs().max(1.0);
        x = new.x;
        f = new.f;
        g = new.g;
        if norm_inf(&g) <= opts.gtol || f_change <= opts.ftol * f_scale {
            return OptimResult {
                x,
                f,
                grad: g,
                iterations: it + 1,
                evaluations,
                converged: true,
                reason: None,
                inv_hessian: h,
            };
        }
        let sy = dot(&s, &y);
        if sy > 1e-300 && sy.is_finite() {
            if first_update {
                // Shanno-Phua scaling of the initial inverse Hessian.
                let yy = dot(&y, &y);
                let scale = sy / yy;
                for v in h.iter_mut() {
                    *v *= scale;
                }
                first_update = false;
            }
            // H <- (I - rho s y') H (I - rho y s') + rho s s'
            let rho = 1.0 / sy;
            let hy: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|j| h[i * n + j] * y[j]).sum())
                .collect();
            let yhy = dot(&y, &hy);
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] += -rho * (hy[i] * s[j] + s[i] * hy[j])
                        + (rho * rho * yhy + rho) * s[i] * s[j];
                }
            }
            h_is_identity = false;
        }
    }
    let it = opts.max_iter;
    fail(
        x,
        f,
        g,
        it,
        evaluations,
        format!("hit the iteration cap ({it} iterations) before converging"),
    )
}

/// A starting point for [`minimize_multistart`], optionally with an inverse-Hessian guess.
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    /// Initial parameters.
    pub x: Vec<f64>,
    /// Initial inverse-Hessian approximation (row-major), if known.
    pub inv_hessian: Option<Vec<f64>>,
}

impl Start {
    /// A start without curvature information.
    pub fn at(x: Vec<f64>) -> Start {
        Start {
            x,
            inv_hessian: None,
        }
    }
}

/// Runs [`minimize_bfgs`] from each start in turn until one converges with every |x_i| <=
/// `max_abs`; returns the best run (converged-and-bounded first, then lowest objective) and the
/// total iterations and evaluations used.
pub fn minimize_multistart<F>(
    mut fg: F,
    starts: &[Start],
    opts: &OptimOptions,
    max_abs: f64,
) -> (Option<OptimResult>, usize, usize)
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let mut best: Option<OptimResult> = None;
    let (mut iterations, mut evaluations) = (0, 0);
    let good =
        |r: &OptimResult| r.converged && r.f.is_finite() && r.x.iter().all(|v| v.abs() <= max_abs);
    for s in starts {
        let r = minimize_bfgs_from(&mut fg, &s.x, s.inv_hessian.as_deref(), opts);
        iterations += r.iterations;
        evaluations += r.evaluations;
        let ok = good(&r);
        let better = match &best {
            None => true,
            Some(b) => {
                let b_ok = good(b);
                (ok && !b_ok) || (ok == b_ok && r.f < b.f)
            }
        };
        if better {
            best = Some(r);
        }
        if ok {
            break;
        }
    }
    (best, iterations, evaluations)
}

/// Strong-Wolfe line search along `p` from `x` (Nocedal & Wright Alg. 3.5 with the zoom of
/// Alg. 3.6, cubic/bisection interpolation). Returns None when no acceptable step is found.
#[allow(clippy::too_many_arguments)]
fn wolfe_line_search<F>(
    fg: &mut F,
    x: &[f64],
    f0: f64,
    _g0: &[f64],
    p: &[f64],
    slope0: f64,
    step0: f64,
    evaluations: &mut usize,
) -> Option<Eval>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    const MAX_EVALS: usize = 40;
    let n = x.len();
    let mut eval = |t: f64, evaluations: &mut usize| -> (Eval, f64) {
        let xt: Vec<f64> = x.iter().zip(p).map(|(a, b)| a + t * b).collect();
        let mut gt = vec![0.0; n];
        let mut ft = fg(&xt, &mut gt);
        *evaluations += 1;
        if !ft.is_finite() || gt.iter().any(|v| !v.is_finite()) {
            ft = f64::INFINITY;
        }
        let d = if ft.is_finite() {
            dot(&gt, p)
        } else {
            f64::NAN
        };
        (
            Eval {
                x: xt,
                f: ft,
                g: gt,
            },
            d,
        )
    };
    let mut t_prev = 0.0;
    let mut f_prev = f0;
    let mut d_prev = slope0;
    let mut t = step0;
    let mut count = 0;
    loop {
        if count >= MAX_EVALS {
            return None;
        }
        count += 1;
        let (e, d) = eval(t, evaluations);
        if !e.f.is_finite() || e.f > f0 + C1 * t * slope0 || (count > 1 && e.f >= f_prev) {
            return zoom(
                &mut eval,
                f0,
                slope0,
                (t_prev, f_prev, d_prev),
                (t, e.f, d),
                evaluations,
                MAX_EVALS - count,
            );
        }
        if d.abs() <= -C2 * slope0 {
            return Some(e);
        }
        if d >= 0.0 {
            return zoom(
                &mut eval,
                f0,
                slope0,
                (t, e.f, d),
                (t_prev, f_prev, d_prev),
                evaluations,
                MAX_EVALS - count,
            );
        }
        t_prev = t;
        f_prev = e.f;
        d_prev = d;
        t *= 2.0;
    }
}

/// Zoom phase: `lo` satisfies sufficient decrease, the minimiser lies between lo and hi.
fn zoom<E>(
    eval: &mut E,
    f0: f64,
    slope0: f64,
    mut lo: (f64, f64, f64),
    mut hi: (f64, f64, f64),
    evaluations: &mut usize,
    budget: usize,
) -> Option<Eval>
where
    E: FnMut(f64, &mut usize) -> (Eval, f64),
{
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    for _ in 0..budget {
        let (a, b) = (lo.0.min(hi.0), lo.0.max(hi.0));
        let width = b - a;
        if width <= 1e-16 * b.abs().max(1e-300) {
            return None;
        }
        // Cubic interpolation when both ends are finite, safeguarded into the middle 80%.
        let mut t = 0.5 * (lo.0 + hi.0);
        if hi.1.is_finite() && hi.2.is_finite() && lo.2.is_finite() {
            let d1 = lo.2 + hi.2 - 3.0 * (lo.1 - hi.1) / (lo.0 - hi.0);
            let disc = d1 * d1 - lo.2 * hi.2;
            if disc >= 0.0 {
                let d2 = (hi.0 - lo.0).signum() * disc.sqrt();
                let tc = hi.0 - (hi.0 - lo.0) * (hi.2 + d2 - d1) / (hi.2 - lo.2 + 2.0 * d2);
                if tc.is_finite() && tc > a + 0.1 * width && tc < b - 0.1 * width {
                    t = tc;
                }
            }
        }
        let (e, d) = eval(t, evaluations);
        if !e.f.is_finite() || e.f > f0 + C1 * t * slope0 || e.f >= lo.1 {
            hi = (t, e.f, d);
        } else {
            if d.abs() <= -C2 * slope0 {
                return Some(e);
            }
            if d * (hi.0 - lo.0) >= 0.0 {
                hi = lo;
            }
            lo = (t, e.f, d);
            // Accept a point with sufficient decrease if the bracket collapses numerically.
            if (hi.0 - lo.0).abs() <= 1e-12 * lo.0.abs() {
                return Some(e);
            }
        }
    }
    None
}

/// Symmetric numerical Hessian by central differences of the analytic gradient `g`:
/// `H[i][j] = (g_i(x + h e_j) - g_i(x - h e_j)) / (2h)`, h = 1e-5 * max(1, |x_j|), symmetrised.
/// Returns None if any gradient evaluation is non-finite.
#[allow(clippy::needless_range_loop)]
pub fn numerical_hessian<G>(mut g: G, x: &[f64]) -> Option<Vec<Vec<f64>>>
where
    G: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x.len();
    let mut hess = vec![vec![0.0; n]; n];
    let mut gp = vec![0.0; n];
    let mut gm = vec![0.0; n];
    for j in 0..n {
        let h = 1e-5 * x[j].abs().max(1.0);
        let mut xp = x.to_vec();
        xp[j] += h;
        let mut xm = x.to_vec();
        xm[j] -= h;
        g(&xp, &mut gp);
        g(&xm, &mut gm);
        for i in 0..n {
            hess[i][j] = (gp[i] - gm[i]) / (2.0 * h);
        }
    }
    for i in 0..n {
        for j in 0..i {
            let v = 0.5 * (hess[i][j] + hess[j][i]);
            hess[i][j] = v;
            hess[j][i] = v;
        }
    }
    if hess.iter().flatten().all(|v| v.is_finite()) {
        Some(hess)
    } else {
        None
    }
}

/// Lower Cholesky factor L (A = L L') of a symmetric positive-definite matrix; None if not
/// positive definite or not square.
#[allow(clippy::needless_range_loop)]
pub fn cholesky(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    if a.iter().any(|r| r.len() != n) {
        return None;
    }
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = a[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if !(s > 0.0) || !s.is_finite() {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    Some(l)
}

/// Inverse of a symmetric positive-definite matrix by Cholesky; None if not positive definite.
#[allow(clippy::needless_range_loop)]
pub fn invert_spd(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    if a.iter().any(|r| r.len() != n) {
        return None;
    }
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = a[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if !(s > 0.0) || !s.is_finite() {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    // inv(A) = inv(L)' inv(L)
    let mut linv = vec![vec![0.0; n]; n];
    for i in 0..n {
        linv[i][i] = 1.0 / l[i][i];
        for j in 0..i {
            let s: f64 = (j..i).map(|k| l[i][k] * linv[k][j]).sum();
            linv[i][j] = -s / l[i][i];
        }
    }
    let mut inv = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..n {
            inv[i][j] = (i.max(j)..n).map(|k| linv[k][i] * linv[k][j]).sum();
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn bfgs_solves_rosenbrock() {
        let r = minimize_bfgs(
            rosenbrock,
            &[-1.2, 1.0],
            &OptimOptions {
                ftol: 0.0,
                ..Default::default()
            },
        );
        assert!(r.converged, "{:?}", r.reason);
        assert!(
            (r.x[0] - 1.0).abs() < 1e-7 && (r.x[1] - 1.0).abs() < 1e-7,
            "{:?}",
            r.x
        );
    }

    #[test]
    fn bfgs_reports_non_finite_start_and_cap() {
        let r = minimize_bfgs(
            |_x: &[f64], _g: &mut [f64]| f64::NAN,
            &[0.0],
            &OptimOptions::default(),
        );
        assert!(!r.converged && r.reason.is_some());
        let r = minimize_bfgs(
            rosenbrock,
            &[-1.2, 1.0],
            &OptimOptions {
                max_iter: 3,
                gtol: 0.0,
                ftol: 0.0,
            },
        );
        assert!(!r.converged);
        assert!(r.reason.as_deref().unwrap_or("").contains("iteration cap"));
        // unbounded below: must stop without panicking
        let r = minimize_bfgs(
            |x: &[f64], g: &mut [f64]| {
                g[0] = -1.0;
                -x[0]
            },
            &[0.0],
            &OptimOptions {
                max_iter: 50,
                ..Default::default()
            },
        );
        assert!(!r.converged);
    }

    #[test]
    fn hessian_and_inverse() {
        // f = x'Ax/2 with A = [[4,1],[1,3]]
        let grad = |x: &[f64], g: &mut [f64]| {
            g[0] = 4.0 * x[0] + x[1];
            g[1] = x[0] + 3.0 * x[1];
            0.0
        };
        let h = numerical_hessian(grad, &[0.3, -0.2]).expect("finite");
        assert!(
            (h[0][0] - 4.0).abs() < 1e-8
                && (h[0][1] - 1.0).abs() < 1e-8
                && (h[1][1] - 3.0).abs() < 1e-8
        );
        let inv = invert_spd(&h).expect("spd");
        // inverse of [[4,1],[1,3]] = [[3,-1],[-1,4]]/11
        assert!((inv[0][0] - 3.0 / 11.0).abs() < 1e-9 && (inv[0][1] + 1.0 / 11.0).abs() < 1e-9);
        assert!(invert_spd(&[vec![1.0, 2.0], vec![2.0, 1.0]]).is_none());
        assert!(invert_spd(&[vec![f64::NAN]]).is_none());
    }
}
