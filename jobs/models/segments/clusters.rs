//! Cluster analysis (docs/segments.md): k-means (linfa) on standardised
//! behavioural features, k chosen by silhouette, every cluster described by what distinguishes it.
//!
//! 1. Customers with purchases and every configured feature known are clustered; others are
//!    `unclassified` (no behaviour to cluster). Features in `log_features` are log1p-transformed
//!    (money and counts are heavy-tailed), then every feature is standardised to mean 0, sd 1.
//! 2. k is fixed (`k: 5`) or chosen (`k: auto`) from `k_min..=k_max`: each candidate is fitted
//!    on a seeded sample of `selection_sample` customers and scored by the mean silhouette on a
//!    seeded sub-sample of `silhouette_sample` of them (exact silhouette is quadratic); the best
//!    score wins, ties to the smaller k. Scores per k are in the run report.
//! 3. The chosen k is fitted on the sample (k-means++ init, `n_runs` restarts, lowest inertia
//!    kept), then refined by Lloyd's iterations on all clustered customers from those centroids
//!    (seeded, so two runs give identical labels).
//! 4. Clusters are numbered 1..k by size (largest first; ties by centroid) and labelled by the
//!    two features whose standardised centroid is furthest from 0, in words ("recent", "premium"),
//!    e.g. `2: lapsed, discount-driven`.

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::{Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Deserialize;

use super::{CustomerView, SchemeOutput, UNCLASSIFIED};
use crate::error::{Error, Result};

/// How k is set: a number, or `auto`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KChoice {
    /// A fixed number of clusters.
    Fixed(usize),
    /// `auto`: chosen by silhouette within `k_min..=k_max`.
    Named(String),
}

/// Settings of the cluster scheme (`models.clusters`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// segment_inputs columns clustered on.
    pub features: Vec<String>,
    /// Features log1p-transformed before standardising.
    pub log_features: Vec<String>,
    /// A fixed k or `auto`.
    pub k: KChoice,
    /// Smallest k tried by `auto`.
    pub k_min: usize,
    /// Largest k tried by `auto`.
    pub k_max: usize,
    /// Customers the candidate k are fitted on.
    pub selection_sample: usize,
    /// Customers the silhouette is computed on.
    pub silhouette_sample: usize,
    /// Restarts of the final fit.
    pub n_runs: usize,
    /// Iteration cap per run.
    pub max_iterations: u64,
    /// Convergence tolerance on centroid movement.
    pub tolerance: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Features named in a cluster's label.
    pub label_features: usize,
    /// Smallest |standardised centroid| a feature needs to be named (else `typical`).
    pub label_min_z: f64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            features: [
                "recency_days",
                "orders",
                "revenue",
                "avg_order_value",
                "discount_line_share",
                "premium_line_share",
                "new_product_line_share",
                "categories",
            ]
            .map(String::from)
            .to_vec(),
            log_features: ["orders", "revenue", "avg_order_value", "categories"]
                .map(String::from)
                .to_vec(),
            k: KChoice::Named("auto".into()),
            k_min: 3,
            k_max: 8,
            selection_sample: 50_000,
            silhouette_sample: 4_000,
            n_runs: 3,
            max_iterations: 300,
            tolerance: 1e-4,
            seed: 42,
            label_features: 2,
            label_min_z: 0.25,
        }
    }
}

impl ClusterConfig {
    /// The candidate k values.
    pub fn candidates(&self) -> std::result::Result<Vec<usize>, String> {
        match &self.k {
            KChoice::Fixed(k) if *k >= 2 => Ok(vec![*k]),
            KChoice::Fixed(k) => Err(format!("k must be at least 2, got {k}")),
            KChoice::Named(s) if s == "auto" => {
                if self.k_min < 2 || self.k_max < self.k_min {
                    Err(format!(
                        "k_min must be at least 2 and k_max at least k_min, got {}..{}",
                        self.k_min, self.k_max
                    ))
                } else {
                    Ok((self.k_min..=self.k_max).collect())
                }
            }
            KChoice::Named(s) => Err(format!("k must be a number or auto, got {s:?}")),
        }
    }

    /// Sensible settings.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.candidates()?;
        if self.features.is_empty() {
            return Err("features must not be empty".into());
        }
        if let Some(f) = self
            .log_features
            .iter()
            .find(|f| !self.features.contains(f))
        {
            return Err(format!("log_features: {f:?} is not one of features"));
        }
        if self.n_runs == 0 || self.max_iterations == 0 || self.silhouette_sample < 10 {
            return Err(
                "n_runs and max_iterations must be positive, silhouette_sample at least 10".into(),
            );
        }
        if self.tolerance.is_nan() || self.tolerance <= 0.0 {
            return Err("tolerance must be positive".into());
        }
        Ok(())
    }
}

/// What distinguishes a cluster: a word for a feature far above (first) or below (second) the
/// average customer.
fn words(feature: &str) -> (String, String) {
    let (hi, lo) = match feature {
        "recency_days" => ("lapsed", "recent"),
        "orders" | "frequency" => ("frequent", "infrequent"),
        "revenue" | "historical_revenue" => ("big spenders", "small spenders"),
        "margin" => ("profitable", "unprofitable"),
        "avg_order_value" => ("large baskets", "small baskets"),
        "discount_share" | "discount_line_share" => ("discount-driven", "full-price"),
        "premium_share" | "premium_line_share" => ("premium", "budget"),
        "new_product_share" | "new_product_line_share" => ("trend-led", "classic"),
        "categories" => ("broad baskets", "narrow baskets"),
        "interactions" => ("engaged", "quiet"),
        "complaints" => ("complaining", "uncomplaining"),
        "tenure_days" => ("long-standing", "recently joined"),
        "price_index" => ("full-price", "bargain"),
        "clv" => ("high CLV", "low CLV"),
        _ => return (format!("high {feature}"), format!("low {feature}")),
    };
    (hi.to_string(), lo.to_string())
}

/// The outcome of clustering a feature matrix.
#[derive(Debug, Clone)]
pub struct Clustering {
    /// Cluster number (1..=k) of each row.
    pub labels: Vec<usize>,
    /// The chosen k.
    pub k: usize,
    /// Mean silhouette per candidate k (empty when k was fixed and not scored).
    pub silhouettes: Vec<(usize, f64)>,
    /// Standardised centroids, row c-1 for cluster c.
    pub centroids: Array2<f64>,
    /// Cluster sizes, index c-1 for cluster c.
    pub sizes: Vec<usize>,
    /// Seconds spent choosing k.
    pub selection_seconds: f64,
}

/// Standardises columns in place (mean 0, sd 1; a constant column becomes 0).
pub fn standardise(x: &mut Array2<f64>) -> Vec<(f64, f64)> {
    let n = x.nrows().max(1) as f64;
    let mut stats = Vec::with_capacity(x.ncols());
    for mut col in x.columns_mut() {
        let mean = col.sum() / n;
        let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
        col.mapv_inplace(|v| (v - mean) / sd);
        stats.push((mean, sd));
    }
    stats
}

/// Pairwise Euclidean distances of rows, as a packed upper triangle (row-major, i < j).
pub struct Distances {
    n: usize,
    d: Vec<f64>,
}

impl Distances {
    /// Computes every pairwise distance once (n (n - 1) / 2 values), in parallel.
    pub fn new(x: ArrayView2<f64>) -> Self {
        let n = x.nrows();
        let rows: Vec<Vec<f64>> = x.rows().into_iter().map(|r| r.to_vec()).collect();
        let d: Vec<f64> = (0..n)
            .into_par_iter()
            .flat_map_iter(|i| {
                let a = &rows[i];
                rows[i + 1..].iter().map(move |b| {
                    a.iter()
                        .zip(b)
                        .map(|(x, y)| (x - y) * (x - y))
                        .sum::<f64>()
                        .sqrt()
                })
            })
            .collect();
        Self { n, d }
    }

    fn get(&self, i: usize, j: usize) -> f64 {
        let (i, j) = if i < j { (i, j) } else { (j, i) };
        // offset of row i in the packed triangle, then column j
        self.d[i * (2 * self.n - i - 1) / 2 + (j - i - 1)]
    }
}

/// Mean silhouette of labelled points (Euclidean); points alone in their cluster score 0.
pub fn silhouette(x: ArrayView2<f64>, labels: &[usize], k: usize) -> f64 {
    silhouette_with(&Distances::new(x), labels, k)
}

/// Mean silhouette over precomputed distances.
pub fn silhouette_with(dist: &Distances, labels: &[usize], k: usize) -> f64 {
    let n = dist.n;
    if n < 2 {
        return 0.0;
    }
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    let s: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut sums = vec![0.0; k];
            for j in 0..n {
                if i != j {
                    sums[labels[j]] += dist.get(i, j);
                }
            }
            let own = labels[i];
            if sizes[own] <= 1 {
                return 0.0;
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            if !b.is_finite() {
                return 0.0;
            }
            let m = a.max(b);
            if m > 0.0 { (b - a) / m } else { 0.0 }
        })
        .collect();
    s.iter().sum::<f64>() / n as f64
}

/// Adjusted Rand index of two labelings (Hubert and Arabie 1985), 1 for identical partitions.
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    assert_eq!(a.len(), b.len());
    let ka = a.iter().max().map_or(0, |m| m + 1);
    let kb = b.iter().max().map_or(0, |m| m + 1);
    let mut table = vec![vec![0u64; kb]; ka];
    for (&x, &y) in a.iter().zip(b) {
        table[x][y] += 1;
    }
    let c2 = |n: u64| (n * n.saturating_sub(1)) as f64 / 2.0;
    let index: f64 = table.iter().flatten().map(|&n| c2(n)).sum();
    let rows: f64 = table.iter().map(|r| c2(r.iter().sum())).sum();
    let cols: f64 = (0..kb).map(|j| c2(table.iter().map(|r| r[j]).sum())).sum();
    let expected = rows * cols / c2(a.len() as u64);
    let max = (rows + cols) / 2.0;
    if max == expected {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

/// Fits k-means (linfa) and returns its centroids: k-means++ with `n_runs` restarts, or
/// Lloyd's iterations from given centroids.
fn fit(
    cfg: &ClusterConfig,
    x: ArrayView2<f64>,
    k: usize,
    n_runs: usize,
    start: Option<Array2<f64>>,
) -> Result<Array2<f64>> {
    let data = DatasetBase::from(x.to_owned());
    let mut params = KMeans::params_with_rng(
        k,
        ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(k as u64)),
    )
    .n_runs(n_runs)
    .max_n_iterations(cfg.max_iterations)
    .tolerance(cfg.tolerance);
    if let Some(c) = start {
        params = params.n_runs(1).init_method(KMeansInit::Precomputed(c));
    }
    let model = params
        .fit(&data)
        .map_err(|e| Error::Internal(format!("k-means with k = {k}: {e}")))?;
    Ok(model.centroids().clone())
}

/// The nearest centroid of each row (ties to the lower index).
fn nearest(x: ArrayView2<f64>, centroids: &Array2<f64>) -> Vec<usize> {
    (0..x.nrows())
        .into_par_iter()
        .map(|i| {
            let row = x.row(i);
            let mut best = (0, f64::INFINITY);
            for (c, centre) in centroids.rows().into_iter().enumerate() {
                let d: f64 = row
                    .iter()
                    .zip(centre.iter())
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                if d < best.1 {
                    best = (c, d);
                }
            }
            best.0
        })
        .collect()
}

fn rows_of(x: ArrayView2<f64>, idx: &[usize]) -> Array2<f64> {
    x.select(Axis(0), idx)
}

fn seeded_sample(n: usize, m: usize, seed: u64) -> Vec<usize> {
    if m >= n {
        return (0..n).collect();
    }
    let mut idx = sample(&mut ChaCha8Rng::seed_from_u64(seed), n, m).into_vec();
    idx.sort_unstable();
    idx
}

/// Clusters standardised rows.
pub fn cluster(cfg: &ClusterConfig, x: ArrayView2<f64>) -> Result<Clustering> {
    let n = x.nrows();
    let candidates: Vec<usize> = cfg
        .candidates()
        .map_err(|m| Error::Model {
            model: "segments".into(),
            message: format!("models.clusters: {m}"),
        })?
        .into_iter()
        .filter(|&k| k <= n)
        .collect();
    let Some(&smallest) = candidates.first() else {
        return Err(Error::Internal(format!(
            "k-means: {n} customers are fewer than the smallest k"
        )));
    };
    let mut silhouettes = Vec::new();
    let started = std::time::Instant::now();
    let sel = seeded_sample(n, cfg.selection_sample, cfg.seed);
    let xs = rows_of(x, &sel);
    let k = if candidates.len() == 1 {
        smallest
    } else {
        let sil_idx = seeded_sample(xs.nrows(), cfg.silhouette_sample, cfg.seed ^ 0x5151);
        let xsil = rows_of(xs.view(), &sil_idx);
        let dist = Distances::new(xsil.view());
        for &k in &candidates {
            let centroids = fit(cfg, xs.view(), k, 1, None)?;
            let labels = nearest(xsil.view(), &centroids);
            let s = silhouette_with(&dist, &labels, k);
            silhouettes.push((k, s));
        }
        silhouettes
            .iter()
            .fold((smallest, f64::NEG_INFINITY), |best, &(k, s)| {
                if s > best.1 + 1e-12 { (k, s) } else { best }
            })
            .0
    };
    let selection_seconds = started.elapsed().as_secs_f64();
    // the chosen k: restarts on the sample, then Lloyd's iterations on everyone from the best
    let centroids = fit(cfg, xs.view(), k, cfg.n_runs, None)?;
    let centroids = fit(cfg, x, k, 1, Some(centroids))?;
    let raw = nearest(x, &centroids);
    // renumber by size (largest first), ties by centroid coordinates
    let mut sizes = vec![0usize; k];
    for &l in raw.iter() {
        sizes[l] += 1;
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| {
        sizes[b].cmp(&sizes[a]).then_with(|| {
            centroids
                .row(a)
                .iter()
                .zip(centroids.row(b).iter())
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    let mut rank = vec![0usize; k];
    for (new, &old) in order.iter().enumerate() {
        rank[old] = new + 1;
    }
    Ok(Clustering {
        labels: raw.iter().map(|&l| rank[l]).collect(),
        k,
        silhouettes,
        centroids: centroids.select(Axis(0), &order),
        sizes: order.iter().map(|&o| sizes[o]).collect(),
        selection_seconds,
    })
}

/// A readable label per cluster from its most distinguishing standardised features: the
/// `label_features` largest |z| at or above `label_min_z`.
pub fn describe(cfg: &ClusterConfig, centroids: &Array2<f64>) -> Vec<String> {
    let features = &cfg.features;
    centroids
        .rows()
        .into_iter()
        .enumerate()
        .map(|(c, row)| {
            let mut by: Vec<(usize, f64)> = row.iter().copied().enumerate().collect();
            by.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
            let parts: Vec<String> = by
                .iter()
                .take(cfg.label_features)
                .filter(|(_, z)| z.abs() >= cfg.label_min_z)
                .map(|&(f, z)| {
                    let (hi, lo) = words(&features[f]);
                    if z > 0.0 { hi } else { lo }
                })
                .collect();
            let text = if parts.is_empty() {
                "typical".to_string()
            } else {
                parts.join(", ")
            };
            format!("{}: {text}", c + 1)
        })
        .collect()
}

/// Computes cluster_id and cluster_label.
pub fn assign(cfg: &ClusterConfig, view: &CustomerView) -> Result<SchemeOutput> {
    let cols: Vec<Vec<Option<f64>>> = cfg
        .features
        .iter()
        .map(|f| view.f64(f))
        .collect::<Result<_>>()?;
    // in customer-id order: the engine's row order varies between runs, and the samples, the
    // k-means++ initialisation and the standardisation sums must not depend on it
    let ids = view.id_strs();
    let mut rows: Vec<usize> = (0..view.len())
        .filter(|&i| view.orders[i].unwrap_or(0) > 0 && cols.iter().all(|c| c[i].is_some()))
        .collect();
    rows.sort_unstable_by(|&a, &b| ids[a].cmp(ids[b]));
    let mut x = Array2::<f64>::zeros((rows.len(), cfg.features.len()));
    for (j, (name, col)) in cfg.features.iter().zip(&cols).enumerate() {
        let log = cfg.log_features.contains(name);
        for (r, &i) in rows.iter().enumerate() {
            let v = col[i].unwrap_or(0.0);
            x[[r, j]] = if log { v.max(0.0).ln_1p() } else { v };
        }
    }
    let stats = standardise(&mut x);
    let mut ids: Vec<Option<u8>> = vec![None; view.len()];
    let mut labels = vec![UNCLASSIFIED.to_string(); view.len()];
    let mut out = SchemeOutput::new("clusters");
    out.why_unclassified = "no purchases or a clustering feature unknown".into();
    let min_k = cfg
        .candidates()
        .ok()
        .and_then(|c| c.first().copied())
        .unwrap_or(2);
    if rows.len() >= min_k.max(2) {
        let c = cluster(cfg, x.view())?;
        let names = describe(cfg, &c.centroids);
        for (r, &i) in rows.iter().enumerate() {
            let l = c.labels[r];
            ids[i] = Some(l as u8);
            labels[i] = names[l - 1].clone();
        }
        let profiles: Vec<serde_json::Value> = (0..c.k)
            .map(|ci| {
                let centre: serde_json::Map<String, serde_json::Value> = cfg
                    .features
                    .iter()
                    .enumerate()
                    .map(|(j, f)| {
                        (f.clone(), serde_json::json!((c.centroids[[ci, j]] * 1000.0).round() / 1000.0))
                    })
                    .collect();
                serde_json::json!({"cluster": ci + 1, "label": names[ci], "customers": c.sizes[ci], "standardised_centroid": centre})
            })
            .collect();
        out.report = serde_json::json!({
            "k": c.k,
            "k_choice": if c.silhouettes.is_empty() { "fixed" } else { "silhouette" },
            "silhouette_by_k": c.silhouettes.iter().map(|(k, s)| serde_json::json!({"k": k, "silhouette": (s * 10000.0).round() / 10000.0})).collect::<Vec<_>>(),
            "customers_clustered": rows.len(),
            "k_selection_seconds": (c.selection_seconds * 1000.0).round() / 1000.0,
            "features": cfg.features,
            "log_features": cfg.log_features,
            "standardisation": stats.iter().map(|(m, s)| serde_json::json!({"mean": m, "sd": s})).collect::<Vec<_>>(),
            "clusters": profiles,
        });
    } else {
        out.report = serde_json::json!({"k": null, "customers_clustered": rows.len(), "reason": "too few customers to cluster"});
    }
    out.push_u8("cluster_id", ids);
    out.set_label("cluster_label", labels);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use rand_distr::{Distribution, Normal};

    #[test]
    fn adjusted_rand_index_matches_published_values() {
        // scikit-learn's documented examples of adjusted_rand_score
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 1]) - 1.0).abs() < 1e-12);
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[1, 1, 0, 0]) - 1.0).abs() < 1e-12);
        assert!(
            (adjusted_rand_index(&[0, 0, 1, 2], &[0, 0, 1, 1]) - 0.571_428_571_428_571_4).abs()
                < 1e-12
        );
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[0, 1, 0, 1]) - -0.5).abs() < 1e-12);
    }

    #[test]
    fn silhouette_by_hand() {
        // two tight pairs on a line: a(0) = 1, b(0) = (10 + 11) / 2
        let x = ndarray::array![[0.0], [1.0], [10.0], [11.0]];
        let s = silhouette(x.view(), &[0, 0, 1, 1], 2);
        let s0 = 1.0 - 1.0 / 10.5; // points 0 and 3
        let s1 = 1.0 - 1.0 / 9.5; // points 1 and 2
        assert!((s - (s0 + s1) / 2.0).abs() < 1e-12);
    }

    fn blobs(per: usize, centres: &[[f64; 3]], seed: u64) -> (Array2<f64>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let noise = Normal::new(0.0, 0.6).unwrap();
        let mut x = Array2::zeros((per * centres.len(), 3));
        let mut truth = Vec::new();
        for (c, centre) in centres.iter().enumerate() {
            for i in 0..per {
                for j in 0..3 {
                    x[[c * per + i, j]] = centre[j] + noise.sample(&mut rng);
                }
                truth.push(c);
            }
        }
        // shuffle rows so the order carries no information
        let mut idx: Vec<usize> = (0..x.nrows()).collect();
        for i in (1..idx.len()).rev() {
            idx.swap(i, rng.gen_range(0..=i));
        }
        (
            x.select(Axis(0), &idx),
            idx.iter().map(|&i| truth[i]).collect(),
        )
    }

    #[test]
    fn planted_groups_are_recovered_and_k_is_chosen_by_silhouette() {
        let centres = [
            [0.0, 0.0, 0.0],
            [6.0, 0.0, 0.0],
            [0.0, 6.0, 0.0],
            [0.0, 0.0, 6.0],
        ];
        let (mut x, truth) = blobs(400, &centres, 7);
        standardise(&mut x);
        let cfg = ClusterConfig {
            features: vec!["a".into(), "b".into(), "c".into()],
            log_features: vec![],
            ..ClusterConfig::default()
        };
        let c = cluster(&cfg, x.view()).unwrap();
        assert_eq!(c.k, 4, "silhouettes {:?}", c.silhouettes);
        let ari = adjusted_rand_index(&truth, &c.labels.iter().map(|l| l - 1).collect::<Vec<_>>());
        assert!(ari >= 0.9, "ARI {ari}");
        // deterministic
        let again = cluster(&cfg, x.view()).unwrap();
        assert_eq!(c.labels, again.labels);
        // numbered by size, every label used
        assert_eq!(c.sizes.iter().sum::<usize>(), 1600);
        assert!(c.sizes.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn clusters_are_described_by_their_most_distinct_features() {
        let mut cfg = ClusterConfig {
            features: vec![
                "recency_days".to_string(),
                "premium_line_share".to_string(),
                "orders".to_string(),
            ],
            ..ClusterConfig::default()
        };
        let centroids = ndarray::array![[-1.2, 0.1, 0.9], [0.0, 0.1, 0.0], [1.5, -0.8, -0.2]];
        assert_eq!(
            describe(&cfg, &centroids),
            vec!["1: recent, frequent", "2: typical", "3: lapsed, budget"]
        );
        cfg.label_features = 1;
        cfg.label_min_z = 1.3;
        assert_eq!(
            describe(&cfg, &centroids),
            vec!["1: typical", "2: typical", "3: lapsed"]
        );
    }

    #[test]
    fn k_must_be_a_number_or_auto() {
        let mut cfg = ClusterConfig::default();
        assert_eq!(cfg.candidates().unwrap(), vec![3, 4, 5, 6, 7, 8]);
        cfg.k = KChoice::Fixed(5);
        assert_eq!(cfg.candidates().unwrap(), vec![5]);
        cfg.k = KChoice::Named("many".into());
        assert!(cfg.validate().is_err());
        cfg.k = KChoice::Fixed(1);
        assert!(cfg.validate().is_err());
    }
}
