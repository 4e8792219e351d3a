//! Tests of the positioning scores, target choice and axes.

use super::*;

fn scheme(segments: &[&str], share: &[f64], margin: &[f64]) -> SchemeSegments {
    let n = segments.len();
    SchemeSegments {
        segments: segments.iter().map(|s| s.to_string()).collect(),
        customers: share.iter().map(|v| Some(v * 1000.0)).collect(),
        customer_share: share.iter().map(|v| Some(*v)).collect(),
        growth: vec![None; n],
        avg_margin: margin.iter().map(|v| Some(*v)).collect(),
        avg_clv: vec![None; n],
        response: vec![Some(0.1); n],
        profile: vec![margin.iter().map(|v| Some(*v)).collect()],
    }
}

/// The pre-issue-13 weighting: every component counts once, value not at all.
fn equal_weights() -> PositioningConfig {
    PositioningConfig {
        weights: Weights {
            size: 1.0,
            growth: 1.0,
            profitability: 1.0,
            value: 0.0,
            distinctness: 1.0,
            response: 1.0,
        },
        ..PositioningConfig::default()
    }
}

#[test]
fn scores_are_min_max_normalised_and_missing_inputs_are_neutral() {
    assert_eq!(
        normalise(&[Some(1.0), Some(3.0), Some(2.0)]),
        vec![0.0, 1.0, 0.5]
    );
    assert_eq!(normalise(&[None, None]), vec![0.5, 0.5]);
    assert_eq!(normalise(&[Some(2.0), Some(2.0)]), vec![0.5, 0.5]);
    assert_eq!(
        normalise(&[Some(1.0), None, Some(3.0)]),
        vec![0.0, 0.0, 1.0]
    );
}

#[test]
fn top_n_targets_by_attractiveness_never_unclassified() {
    let cfg = equal_weights();
    let s = scheme(
        &["a", "b", "c", UNCLASSIFIED],
        &[0.3, 0.2, 0.1, 0.4],
        &[10.0, 50.0, 20.0, 0.0],
    );
    let (e, note) = evaluate(&cfg, &s);
    // b: most profitable and most distinct; a: largest
    assert_eq!(e[1].target_rank, Some(1));
    assert!(e[0].is_target || e[2].is_target);
    assert!(!e[3].is_target);
    assert_eq!(e.iter().filter(|x| x.is_target).count(), 2);
    assert!(note.is_none());
    // size: a = 1, c = 0 (min-max over the classified segments only)
    assert_eq!(e[0].scores[0], 1.0);
    assert_eq!(e[2].scores[0], 0.0);
    // growth and value unknown: neutral for all
    assert!(
        e.iter()
            .take(3)
            .all(|x| x.scores[1] == 0.5 && x.scores[3] == 0.5)
    );
    for x in e.iter().take(3) {
        let w = cfg.weights.as_array();
        let mean = x.scores.iter().zip(&w).map(|(s, w)| s * w).sum::<f64>() / w.iter().sum::<f64>();
        assert!((x.attractiveness - mean).abs() < 1e-12);
    }
}

#[test]
fn a_segment_below_the_base_on_clv_and_margin_is_not_ranked_first() {
    // "light": the largest, most responsive, growing segment, but below the base on value
    // (the usage `light` of issue 13)
    let s = SchemeSegments {
        segments: vec!["heavy".into(), "light".into(), "medium".into()],
        customers: vec![Some(3782.0), Some(7562.0), Some(7562.0)],
        customer_share: vec![Some(0.19), Some(0.38), Some(0.38)],
        growth: vec![Some(0.028), Some(0.030), Some(0.029)],
        avg_margin: vec![Some(57.8), Some(11.4), Some(24.6)],
        avg_clv: vec![Some(80.0), Some(4.4), Some(15.3)],
        response: vec![Some(0.093), Some(0.098), Some(0.095)],
        profile: vec![vec![Some(80.0), Some(4.4), Some(15.3)]],
    };
    // equal weights without the rule: light wins on size, growth and response
    let mut cfg = equal_weights();
    cfg.below_base_last = false;
    let (e, _) = evaluate(&cfg, &s);
    assert_eq!(e[1].target_rank, Some(1), "{e:?}");
    assert!(e[1].below_base && !e[0].below_base);
    // the rule puts it after every segment that is not below the base
    cfg.below_base_last = true;
    let (e, _) = evaluate(&cfg, &s);
    assert_ne!(e[1].target_rank, Some(1), "{e:?}");
    assert_eq!(e[0].target_rank, Some(1), "{e:?}");
    // and the default weights alone rank heavy first
    let cfg = PositioningConfig {
        below_base_last: false,
        ..PositioningConfig::default()
    };
    let (e, _) = evaluate(&cfg, &s);
    assert_eq!(e[0].target_rank, Some(1), "{e:?}");
}

#[test]
fn too_broad_and_too_narrow_are_noted() {
    let mut cfg = PositioningConfig {
        top_n: 5,
        ..PositioningConfig::default()
    };
    let s = scheme(&["a", "b"], &[0.5, 0.5], &[1.0, 2.0]);
    assert!(evaluate(&cfg, &s).1.unwrap().contains("too broad"));
    cfg.target_mode = TargetMode::Threshold;
    cfg.min_attractiveness = 1.0;
    assert!(evaluate(&cfg, &s).1.unwrap().contains("too narrow"));
    // unprofitable segments are not eligible
    cfg.target_mode = TargetMode::TopN;
    cfg.top_n = 2;
    let loss = scheme(&["a", "b"], &[0.5, 0.5], &[-1.0, 2.0]);
    let (e, _) = evaluate(&cfg, &loss);
    assert!(!e[0].is_target && e[1].is_target);
    // tiny segments are not eligible
    cfg.top_n = 1;
    cfg.min_customer_share = 0.6;
    assert!(evaluate(&cfg, &s).1.unwrap().contains("too narrow"));
}

#[test]
fn auto_x_axis_takes_the_candidate_that_spreads_the_segments() {
    let cfg = PositioningConfig::default();
    let flat = vec![Some(0.91), Some(0.915), Some(0.92)];
    let wide = vec![Some(18.0), Some(35.0), Some(98.0)];
    let (x, spreads) = choose_x_axis(
        &cfg,
        &[("avg_price_index", flat.clone()), ("avg_order_value", wide)],
    );
    assert_eq!(x, "avg_order_value");
    assert!(spreads["avg_order_value"].unwrap() > spreads["avg_price_index"].unwrap());
    // nothing to compare: the first candidate
    let (x, _) = choose_x_axis(&cfg, &[("avg_order_value", vec![Some(1.0)])]);
    assert_eq!(x, "avg_price_index");
    // a fixed axis is kept
    let fixed = PositioningConfig {
        x_axis: "avg_price_index".into(),
        ..PositioningConfig::default()
    };
    assert_eq!(choose_x_axis(&fixed, &[]).0, "avg_price_index");
    assert_eq!(
        base(&[Some(1.0), Some(4.0)], &[Some(3.0), Some(1.0)]),
        Some(1.75)
    );
}

#[test]
fn a_rule_without_a_whole_mix_is_a_configuration_error() {
    let cfg = PositioningConfig {
        strategies: serde_yaml_ng::from_str("- {segments: [a], action: x}").unwrap(),
        ..PositioningConfig::default()
    };
    let err = cfg.validate().unwrap_err();
    assert!(
        err.starts_with("strategies[0]: rule `a` has no product"),
        "{err}"
    );
    assert!(PositioningConfig::default().validate().is_ok());
}
