#!/usr/bin/env bash
# One command for a local monitoring stack on this machine: Debian's Prometheus
# scraping a lensfind scan, then a PNG of the scan's key metrics.
#
#   deploy/local/monitor-scan.sh [engine scan arguments]      e.g. --survey des_y3
#
# Needs: `apt-get install prometheus` and lensfind installed (`engine` on PATH).
# Prometheus listens on 127.0.0.1:${PROM_PORT:-9090}, the scan serves metrics on
# 127.0.0.1:${METRICS_PORT:-9450}; both scraped every ${SCRAPE:-2s}. With KEEP=1
# Prometheus stays up after the scan (Ctrl-C to stop) for browsing at
# http://127.0.0.1:9090/graph.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
state=${STATE_DIR:-$(mktemp -d -t lensfind-monitor-XXXX)}
prom_port=${PROM_PORT:-9090}
metrics_port=${METRICS_PORT:-9450}
command -v prometheus >/dev/null || { echo "prometheus not found: apt-get install prometheus" >&2; exit 2; }

cat >"$state/prometheus.yml" <<YAML
global: {scrape_interval: ${SCRAPE:-2s}, evaluation_interval: ${SCRAPE:-2s}}
rule_files: ["$root/deploy/prometheus/alerts.yml"]
scrape_configs:
  - job_name: lensfind
    static_configs: [{targets: ["127.0.0.1:$metrics_port"]}]
YAML
prometheus --config.file="$state/prometheus.yml" --storage.tsdb.path="$state/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$state/prometheus.log" 2>&1 &
prom=$!
trap 'kill $prom 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
  curl -sf "http://127.0.0.1:$prom_port/-/ready" >/dev/null && break
  sleep 0.5
done
echo "Prometheus: http://127.0.0.1:$prom_port (data in $state)"

start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
set +e
engine scan --metrics-port "$metrics_port" "$@"
status=$?
set -e
sleep 3  # the last scrape happens while the scan process exits; keep what was seen
end=$(date -u +%Y-%m-%dT%H:%M:%SZ)
python "$root/deploy/local/plot_metrics.py" --prometheus "http://127.0.0.1:$prom_port" \
  --start "$start" --end "$end" --out "$state/scan-metrics.png" \
  --title "engine scan $* (scan exit $status)"
if [ "${KEEP:-0}" = 1 ]; then
  echo "Prometheus keeps running; Ctrl-C to stop"
  wait "$prom"
fi
exit "$status"
