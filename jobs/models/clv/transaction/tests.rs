//! Tests of the transaction-model fits: gradients and Hessians against finite differences,
//! degenerate and hostile inputs, parameter recovery.

use super::likelihood::objective_hessian;
use super::*;

fn toy_rows() -> Vec<SummaryRow> {
    vec![
        SummaryRow {
            x: 0.0,
            t_x: 0.0,
            t: 30.0,
            weight: 50.0,
        },
        SummaryRow {
            x: 1.0,
            t_x: 10.0,
            t: 30.0,
            weight: 20.0,
        },
        SummaryRow {
            x: 2.0,
            t_x: 25.0,
            t: 35.0,
            weight: 10.0,
        },
        SummaryRow {
            x: 5.0,
            t_x: 28.0,
            t: 30.0,
            weight: 5.0,
        },
        SummaryRow {
            x: 1.0,
            t_x: 2.0,
            t: 20.0,
            weight: 15.0,
        },
    ]
}

#[test]
fn gradient_matches_finite_differences() {
    let d = NbdData::new(&toy_rows()).expect("valid");
    for kind in [TransactionModelKind::BgNbd, TransactionModelKind::MbgNbd] {
        let th = [(-0.3f64), 1.2, (-0.2), 0.8];
        let mut g = [0.0; 4];
        objective(kind, &d, &th, 0.05, &mut g);
        for i in 0..4 {
            let h = 1e-6;
            let mut tp = th;
            tp[i] += h;
            let mut tm = th;
            tm[i] -= h;
            let mut tmp = [0.0; 4];
            let fd = (objective(kind, &d, &tp, 0.05, &mut tmp)
                - objective(kind, &d, &tm, 0.05, &mut tmp))
                / (2.0 * h);
            assert!(
                (fd - g[i]).abs() < 1e-7,
                "{kind:?} {i}: fd {fd} vs {}",
                g[i]
            );
        }
        // vectorised LL equals the sum of row LLs
        let p = NbdParams {
            r: 0.7,
            alpha: 3.0,
            a: 0.8,
            b: 2.2,
        };
        let m = TransactionModel { kind, params: p };
        let direct: f64 = toy_rows()
            .iter()
            .map(|r| {
                r.weight
                    * m.log_likelihood_row(&Rfm {
                        x: r.x,
                        t_x: r.t_x,
                        t: r.t,
                    })
            })
            .sum();
        assert!((m.log_likelihood(&toy_rows()) - direct).abs() < 1e-10);
    }
}

#[test]
fn analytic_hessian_matches_finite_differences_of_the_gradient() {
    let d = NbdData::new(&toy_rows()).expect("valid");
    for kind in [TransactionModelKind::BgNbd, TransactionModelKind::MbgNbd] {
        let th = [(-0.3f64), 1.2, (-0.2), 0.8];
        let (f, g, h) = objective_hessian(kind, &d, &th, 0.05);
        let mut g2 = [0.0; 4];
        let f2 = objective(kind, &d, &th, 0.05, &mut g2);
        assert!((f - f2).abs() < 1e-13);
        for i in 0..4 {
            assert!((g[i] - g2[i]).abs() < 1e-12, "{kind:?} g{i}");
            let hh = 1e-6;
            let mut tp = th;
            tp[i] += hh;
            let mut tm = th;
            tm[i] -= hh;
            let (mut gp, mut gm) = ([0.0; 4], [0.0; 4]);
            objective(kind, &d, &tp, 0.05, &mut gp);
            objective(kind, &d, &tm, 0.05, &mut gm);
            for j in 0..4 {
                let fd = (gp[j] - gm[j]) / (2.0 * hh);
                assert!(
                    (fd - h[j][i]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{kind:?} H[{j}][{i}]: fd {fd} vs {}",
                    h[j][i]
                );
            }
        }
    }
}

#[test]
fn degenerate_inputs_give_clean_status() {
    let o = FitOptions::default();
    for kind in [
        TransactionModelKind::BgNbd,
        TransactionModelKind::MbgNbd,
        TransactionModelKind::ParetoNbd,
    ] {
        let cases: Vec<(Vec<SummaryRow>, &str)> = vec![
            (vec![], "no customers"),
            (
                vec![SummaryRow {
                    x: 3.0,
                    t_x: 5.0,
                    t: 9.0,
                    weight: 1.0,
                }],
                "single customer",
            ),
            (
                vec![SummaryRow {
                    x: 0.0,
                    t_x: 0.0,
                    t: 9.0,
                    weight: 100.0,
                }],
                "every customer bought once",
            ),
            (
                vec![
                    SummaryRow {
                        x: 0.0,
                        t_x: 0.0,
                        t: 0.0,
                        weight: 10.0,
                    },
                    SummaryRow {
                        x: 2.0,
                        t_x: 0.0,
                        t: 0.0,
                        weight: 10.0,
                    },
                ],
                "zero time",
            ),
            (
                vec![
                    SummaryRow {
                        x: 0.0,
                        t_x: 0.0,
                        t: 9.0,
                        weight: 100.0,
                    },
                    SummaryRow {
                        x: 2.0,
                        t_x: 3.0,
                        t: 9.0,
                        weight: 3.0,
                    },
                ],
                "too few repeat customers: 3 < configured minimum 10",
            ),
            (
                vec![SummaryRow {
                    x: f64::NAN,
                    t_x: 0.0,
                    t: 9.0,
                    weight: 1.0,
                }],
                "invalid summary row 0",
            ),
            (
                vec![SummaryRow {
                    x: 1.0,
                    t_x: -1.0,
                    t: 9.0,
                    weight: 1.0,
                }],
                "invalid summary row 0",
            ),
            (
                vec![SummaryRow {
                    x: 1.0,
                    t_x: 1.0,
                    t: 9.0,
                    weight: -2.0,
                }],
                "weight",
            ),
        ];
        for (rows, want) in cases {
            let f = fit_transactions(kind, &rows, &o);
            assert!(!f.converged, "{want}");
            let reason = f.reason.unwrap_or_default();
            assert!(
                reason.contains(want),
                "{kind:?}: expected '{want}' in '{reason}'"
            );
        }
        // Weights so large that the total overflows: non-finite objective, clean status.
        let mut huge = toy_rows();
        for r in huge.iter_mut() {
            r.weight = 1e308;
        }
        let f = fit_transactions(kind, &huge, &o);
        assert!(!f.converged);
        assert!(f.reason.unwrap_or_default().contains("non-finite"));
        let same = vec![
            SummaryRow {
                x: 1.0,
                t_x: 5.0,
                t: 5.0,
                weight: 40.0
            };
            2
        ];
        let f = fit_transactions(kind, &same, &o);
        assert!(f.reason.unwrap_or_default().contains("same (x, t_x, T)"));
        let f = fit_transactions(kind, &toy_rows(), &FitOptions { max_iter: 1, ..o });
        assert!(!f.converged);
        assert!(f.reason.unwrap_or_default().contains("iteration cap"));
        let f = fit_transactions(
            kind,
            &toy_rows(),
            &FitOptions {
                penalizer: f64::NAN,
                ..o
            },
        );
        assert!(!f.converged && f.reason.is_some());
    }
}

#[test]
fn pathological_data_never_panics() {
    let o = FitOptions {
        min_repeat_customers: 1,
        ..Default::default()
    };
    let sets: Vec<Vec<SummaryRow>> = vec![
        // every repeat purchase on the first day
        vec![
            SummaryRow {
                x: 0.0,
                t_x: 0.0,
                t: 30.0,
                weight: 10.0,
            },
            SummaryRow {
                x: 3.0,
                t_x: 0.0,
                t: 30.0,
                weight: 10.0,
            },
        ],
        // everyone buys at the very end
        vec![SummaryRow {
            x: 1.0,
            t_x: 5.0,
            t: 5.0,
            weight: 40.0,
        }],
        vec![
            SummaryRow {
                x: 1e6,
                t_x: 1.0,
                t: 1.0,
                weight: 2.0,
            },
            SummaryRow {
                x: 0.0,
                t_x: 0.0,
                t: 1e-300,
                weight: 1e-300,
            },
        ],
        vec![
            SummaryRow {
                x: 2.0,
                t_x: 1e300,
                t: 1e300,
                weight: 5.0,
            },
            SummaryRow {
                x: 0.0,
                t_x: 0.0,
                t: 1e-3,
                weight: 5.0,
            },
        ],
    ];
    for kind in [
        TransactionModelKind::BgNbd,
        TransactionModelKind::MbgNbd,
        TransactionModelKind::ParetoNbd,
    ] {
        for rows in &sets {
            let f = fit_transactions(kind, rows, &o);
            assert!(f.converged || f.reason.is_some(), "{kind:?} {rows:?}");
            if f.converged {
                assert!(f.model.params.is_valid() && f.log_likelihood.is_finite());
            }
        }
    }
}

#[test]
fn posterior_rate_and_days_to_next_purchase() {
    let m = TransactionModel {
        kind: TransactionModelKind::BgNbd,
        params: NbdParams {
            r: 0.25,
            alpha: 4.0,
            a: 0.8,
            b: 2.5,
        },
    };
    assert!((m.posterior_rate(3.0, 20.0) - 3.25 / 24.0).abs() < 1e-15);
    assert!((m.expected_days_to_next_purchase(3.0, 20.0, 7.0) - 7.0 * 24.0 / 3.25).abs() < 1e-12);
    assert!(m.posterior_rate(-1.0, 20.0).is_nan());
    assert!(m.posterior_rate(1.0, f64::NAN).is_nan());
    assert!(m.expected_days_to_next_purchase(1.0, 2.0, 0.0).is_nan());
}

#[test]
fn small_fit_converges_and_penalty_shrinks() {
    let o = FitOptions::default();
    let truth = NbdParams {
        r: 0.5,
        alpha: 5.0,
        a: 0.8,
        b: 2.5,
    };
    let sim = super::super::sim::simulate_bgnbd(3000, &truth, 52.0, 7);
    let rows = super::super::summary::summarize(&sim).rows;
    let f = fit_transactions(TransactionModelKind::BgNbd, &rows, &o);
    assert!(f.converged, "{:?}", f.reason);
    assert!(f.std_errors.is_some());
    let fp = fit_transactions(
        TransactionModelKind::BgNbd,
        &rows,
        &FitOptions {
            penalizer: 0.1,
            ..o
        },
    );
    assert!(fp.converged, "{:?}", fp.reason);
    let n2 = |p: NbdParams| p.r * p.r + p.alpha * p.alpha + p.a * p.a + p.b * p.b;
    assert!(n2(fp.model.params) < n2(f.model.params));
    assert!(fp.log_likelihood <= f.log_likelihood + 1e-9);
}
