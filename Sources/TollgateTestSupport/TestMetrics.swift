import Metrics
import Prometheus

/// One Prometheus registry for the whole test process: swift-metrics can be bootstrapped only
/// once, so every app under test records into this registry, and tests read `/metrics` from it.
public enum TestMetrics {
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}
