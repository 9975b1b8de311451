//! Prometheus text format 0.0.4, as prometheus-cpp's TextSerializer writes OVMS's: `# HELP`, `# TYPE`,
//! then the series with labels sorted by name; a histogram as _count, _sum, then cumulative _bucket
//! lines ending in le="+Inf". Families the selection leaves out are not printed at all.

use std::fmt::Write;

use super::families::{Family, API_TFS, FAMILIES, INTERFACES, METHODS, REFUSAL_REASONS};
use super::histogram::{Histogram, BUCKETS};
use super::series::{Outcomes, VersionSeries};
use super::Registry;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// The whole exposition (one lock: the model table, held while it is written).
pub fn render(registry: &Registry) -> String {
    let selection = registry.selection();
    let mut out = String::with_capacity(16 << 10);
    for spec in FAMILIES.iter().filter(|s| selection.has(s.family)) {
        let _ = writeln!(out, "# HELP {} {}", spec.name, spec.help);
        let _ = writeln!(out, "# TYPE {} {}", spec.name, spec.kind.name());
        write_family(&mut out, registry, spec.family, spec.name);
    }
    out
}

fn write_family(out: &mut String, registry: &Registry, family: Family, name: &str) {
    let transports = &registry.transports;
    match family {
        Family::RequestsSuccess | Family::RequestsFail => {
            let pick = |o: &Outcomes| {
                if family == Family::RequestsSuccess {
                    o.success.get()
                } else {
                    o.fail.get()
                }
            };
            registry.for_each_model(|model, series, versions| {
                for (i, interface) in INTERFACES.iter().enumerate() {
                    let labels = format!(
                        "api=\"{API_TFS}\",interface=\"{interface}\",method=\"{}\",name=\"{}\"",
                        METHODS[2],
                        escape(model)
                    );
                    sample(out, name, &labels, pick(&series.status[i]));
                }
                for (version, v) in versions {
                    for (i, interface) in INTERFACES.iter().enumerate() {
                        for (m, outcomes) in v.requests[i].iter().enumerate() {
                            let labels = format!(
                                "api=\"{API_TFS}\",interface=\"{interface}\",method=\"{}\",name=\"{}\",version=\"{version}\"",
                                METHODS[m],
                                escape(model)
                            );
                            sample(out, name, &labels, pick(outcomes));
                        }
                    }
                }
            });
        }
        Family::RequestTime => each_version(registry, |model, version, v| {
            for (i, interface) in INTERFACES.iter().enumerate() {
                let labels = format!(
                    "interface=\"{interface}\",{}",
                    version_labels(model, version)
                );
                histogram(out, name, &labels, &v.request_time[i]);
            }
        }),
        Family::InferenceTime => each_version(registry, |model, version, v| {
            histogram(
                out,
                name,
                &version_labels(model, version),
                &v.inference_time,
            );
        }),
        Family::WaitForInferReqTime => each_version(registry, |model, version, v| {
            let labels = version_labels(model, version);
            histogram(out, name, &labels, &v.wait_for_infer_req_time);
        }),
        Family::Streams => gauges(out, registry, name, |v| v.streams.get()),
        Family::CurrentRequests => gauges(out, registry, name, |v| v.current_requests.get()),
        Family::InferReqQueueSize => gauges(out, registry, name, |v| v.infer_req_queue_size.get()),
        Family::InferReqActive => gauges(out, registry, name, |v| v.infer_req_active.get()),
        Family::RequestsRefused => {
            for (i, interface) in INTERFACES.iter().enumerate() {
                for (r, reason) in REFUSAL_REASONS.iter().enumerate() {
                    let labels = format!("interface=\"{interface}\",reason=\"{reason}\"");
                    sample(out, name, &labels, transports.refused[i][r].get());
                }
            }
        }
        Family::RequestBytes => per_interface(out, name, |i| transports.request_bytes[i].get()),
        Family::ReplyBytes => per_interface(out, name, |i| transports.reply_bytes[i].get()),
        Family::InFlightRequests => per_interface(out, name, |i| transports.in_flight[i].get()),
        Family::ImageDecodeTime => histogram(out, name, "", &transports.image_decode_time),
        Family::BatchSize => each_version(registry, |model, version, v| {
            histogram(out, name, &version_labels(model, version), &v.batch_size.0);
        }),
    }
}

fn each_version(registry: &Registry, mut visit: impl FnMut(&str, u64, &VersionSeries)) {
    registry.for_each_model(|model, _, versions| {
        for (version, v) in versions {
            visit(model, *version, v);
        }
    });
}

fn gauges(
    out: &mut String,
    registry: &Registry,
    name: &str,
    value: impl Fn(&VersionSeries) -> i64,
) {
    each_version(registry, |model, version, v| {
        sample(out, name, &version_labels(model, version), value(v));
    });
}

fn per_interface<T: std::fmt::Display>(out: &mut String, name: &str, value: impl Fn(usize) -> T) {
    for (i, interface) in INTERFACES.iter().enumerate() {
        sample(out, name, &format!("interface=\"{interface}\""), value(i));
    }
}

fn version_labels(model: &str, version: u64) -> String {
    format!("name=\"{}\",version=\"{version}\"", escape(model))
}

fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

fn histogram(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let snapshot = histogram.snapshot();
    let with = |extra: &str| match (labels.is_empty(), extra.is_empty()) {
        (true, _) => extra.to_owned(),
        (false, true) => labels.to_owned(),
        (false, false) => format!("{labels},{extra}"),
    };
    sample(
        out,
        &format!("{name}_count"),
        &with(""),
        snapshot.cumulative[BUCKETS],
    );
    sample(out, &format!("{name}_sum"), &with(""), snapshot.sum);
    let bucket = format!("{name}_bucket");
    for (bound, count) in histogram.bounds().iter().zip(&snapshot.cumulative) {
        sample(out, &bucket, &with(&format!("le=\"{bound}\"")), count);
    }
    sample(
        out,
        &bucket,
        &with("le=\"+Inf\""),
        snapshot.cumulative[BUCKETS],
    );
}

/// A label value as the text format wants it: backslash, quote and newline escaped.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::families::Selection;
    use crate::metrics::series::TransportSeries;

    fn registry(selection: Selection) -> Registry {
        let registry = Registry {
            selection: Default::default(),
            transports: TransportSeries::default(),
            models: Default::default(),
        };
        registry.enable(selection);
        registry
    }

    #[test]
    fn version_series_start_at_zero_with_ovms_labels() {
        let registry = registry(Selection::defaults());
        let handle = registry.version("m\"x", 3);
        handle.version.requests[0][0].success.inc();
        let text = render(&registry);
        assert!(text.contains("# HELP ovms_requests_success Number of successful requests to a model or a DAG.\n# TYPE ovms_requests_success counter\n"));
        assert!(text.contains("ovms_requests_success{api=\"TensorFlowServing\",interface=\"gRPC\",method=\"GetModelStatus\",name=\"m\\\"x\"} 0\n"));
        assert!(text.contains("ovms_requests_success{api=\"TensorFlowServing\",interface=\"gRPC\",method=\"Predict\",name=\"m\\\"x\",version=\"3\"} 1\n"));
        assert!(text.contains("ovms_request_time_us_bucket{interface=\"REST\",name=\"m\\\"x\",version=\"3\",le=\"1474755971\"} 0\n"));
        assert!(text.contains("ovms_rs_image_decode_time_us_bucket{le=\"+Inf\"} 0\n"));
        assert!(!text.contains("ovms_infer_req_active"));
    }

    #[test]
    fn only_selected_families_are_printed() {
        let registry = registry(Selection::of([Family::Streams]));
        registry.version("m", 1).version.streams.set(4);
        assert_eq!(
            render(&registry),
            "# HELP ovms_streams Number of OpenVINO execution streams.\n# TYPE ovms_streams gauge\novms_streams{name=\"m\",version=\"1\"} 4\n"
        );
    }
}
