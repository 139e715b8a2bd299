#include "observability/metrics_server.hpp"

#include "flow/text.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <thread>

namespace flow::observability {
namespace {

std::string escape_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string metric_name(std::string_view raw) {
  std::string out;
  for (char c : raw) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

// A plugin counter key "name{k=\"v\"}" -> ("name", "k=\"v\"").
std::pair<std::string, std::string> split_key(const std::string& key) {
  const auto brace = key.find('{');
  if (brace == std::string::npos) return {key, ""};
  return {key.substr(0, brace), key.substr(brace + 1, key.size() - brace - 2)};
}

const char* kDashboard = R"HTML(<!doctype html>
<html><head><meta charset="utf-8"><title>Flow</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}.bar{background:#eee;width:10em;height:.8em;display:inline-block}
.fill{background:#3a7;height:100%}.hot{background:#d53}
</style></head><body>
<h1 id="title">Flow</h1><p id="meta"></p>
<h2>Stages</h2><table id="stages"><tr><th>stage</th><th>plugin</th><th>records in</th><th>in/s</th><th>records out</th><th>out/s</th><th>counters</th></tr></table>
<h2>Channels</h2><table id="channels"><tr><th>channel</th><th>fill</th><th>batches</th><th>bytes</th><th>writer blocked</th></tr></table>
<script>
let last = null;
function row(cells){const tr=document.createElement('tr');for(const c of cells){const td=document.createElement('td');if(c instanceof Node)td.appendChild(c);else td.textContent=c;tr.appendChild(td);}return tr;}
function rate(now,prev,dt){return prev===undefined||dt<=0?'':Math.round((now-prev)/dt).toLocaleString();}
async function tick(){
  try{
    const s = await (await fetch('metrics.json')).json();
    document.getElementById('title').textContent = 'Flow: ' + s.pipeline;
    document.getElementById('meta').textContent = 'cycle ' + (s.cycle+1) + ', up ' + s.uptime_seconds.toFixed(0) + ' s';
    const dt = last ? s.uptime_seconds - last.uptime_seconds : 0;
    const st = document.getElementById('stages'); while(st.rows.length>1) st.deleteRow(1);
    for (const g of s.stages){
      const p = last && last.stages.find(x=>x.id===g.id);
      st.appendChild(row([g.id,g.plugin,g.records_in.toLocaleString(),rate(g.records_in,p&&p.records_in,dt),
        g.records_out.toLocaleString(),rate(g.records_out,p&&p.records_out,dt),
        Object.entries(g.counters).map(([k,v])=>k+'='+v).join(' ')]));
    }
    const ch = document.getElementById('channels'); while(ch.rows.length>1) ch.deleteRow(1);
    for (const c of s.channels){
      const frac = Math.min(1, Math.max(c.depth/c.max_batches, c.bytes/c.max_bytes));
      const bar = document.createElement('span'); bar.className='bar';
      const fill = document.createElement('span'); fill.className='fill'+(frac>0.9?' hot':''); fill.style.width=(frac*100)+'%'; fill.style.display='block';
      bar.appendChild(fill);
      ch.appendChild(row([c.name,bar,c.depth+'/'+c.max_batches,c.bytes.toLocaleString(),c.blocked_seconds.toFixed(2)+' s']));
    }
    last = s;
  }catch(e){document.getElementById('meta').textContent='pipeline not reachable: '+e;}
}
tick(); setInterval(tick, 1000);
</script></body></html>
)HTML";

}  // namespace

std::string prometheus_text(const runtime::Snapshot& s) {
  std::string out;
  const std::string p = escape_label(s.pipeline);
  auto family = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  family("flow_stage_records_in_total", "counter", "Records a stage received.");
  for (const auto& g : s.stages)
    out += fmt::format("flow_stage_records_in_total{{pipeline=\"{}\",stage=\"{}\"}} {}\n", p, escape_label(g.id), g.records_in);
  family("flow_stage_records_out_total", "counter", "Records a stage emitted.");
  for (const auto& g : s.stages)
    out += fmt::format("flow_stage_records_out_total{{pipeline=\"{}\",stage=\"{}\"}} {}\n", p, escape_label(g.id), g.records_out);
  family("flow_stage_batches_in_total", "counter", "Batches a stage received.");
  for (const auto& g : s.stages)
    out += fmt::format("flow_stage_batches_in_total{{pipeline=\"{}\",stage=\"{}\"}} {}\n", p, escape_label(g.id), g.batches_in);
  // Plugin counters: one family per name, the plugin's labels kept.
  std::map<std::string, std::vector<std::string>> plugin_lines;
  for (const auto& g : s.stages)
    for (const auto& [key, v] : g.counters) {
      auto [name, labels] = split_key(key);
      plugin_lines["flow_plugin_" + metric_name(name) + "_total"].push_back(
          fmt::format("{{pipeline=\"{}\",stage=\"{}\"{}{}}} {}", p, escape_label(g.id), labels.empty() ? "" : ",", labels, v));
    }
  for (const auto& [name, lines] : plugin_lines) {
    out += fmt::format("# TYPE {} counter\n", name);
    for (const auto& l : lines) out += name + l + "\n";
  }
  family("flow_channel_depth_batches", "gauge", "Batches queued in a stage's input channel.");
  for (const auto& [n, c] : s.channels)
    out += fmt::format("flow_channel_depth_batches{{pipeline=\"{}\",channel=\"{}\"}} {}\n", p, escape_label(n), c.depth);
  family("flow_channel_bytes", "gauge", "Bytes queued in a stage's input channel.");
  for (const auto& [n, c] : s.channels)
    out += fmt::format("flow_channel_bytes{{pipeline=\"{}\",channel=\"{}\"}} {}\n", p, escape_label(n), c.bytes);
  family("flow_channel_capacity_batches", "gauge", "A channel's limit in batches.");
  for (const auto& [n, c] : s.channels)
    out += fmt::format("flow_channel_capacity_batches{{pipeline=\"{}\",channel=\"{}\"}} {}\n", p, escape_label(n), c.max_batches);
  family("flow_channel_writer_blocked_seconds_total", "counter", "Time writers waited for room (backpressure).");
  for (const auto& [n, c] : s.channels)
    out += fmt::format("flow_channel_writer_blocked_seconds_total{{pipeline=\"{}\",channel=\"{}\"}} {:.6f}\n", p, escape_label(n),
                       static_cast<double>(c.blocked_ns) / 1e9);
  family("flow_cycle", "gauge", "The current cycle, from 0.");
  out += fmt::format("flow_cycle{{pipeline=\"{}\"}} {}\n", p, s.cycle);
  return out;
}

std::string snapshot_json(const runtime::Snapshot& s) {
  auto q = [](std::string_view v) { return json_string(v); };
  std::string out = fmt::format("{{\"pipeline\":{},\"cycle\":{},\"uptime_seconds\":{:.3f},\"stages\":[", q(s.pipeline), s.cycle,
                                s.uptime_seconds);
  for (std::size_t i = 0; i < s.stages.size(); ++i) {
    const auto& g = s.stages[i];
    std::string counters;
    for (const auto& [k, v] : g.counters) counters += fmt::format("{}{}:{}", counters.empty() ? "" : ",", q(k), v);
    out += fmt::format("{}{{\"id\":{},\"plugin\":{},\"records_in\":{},\"records_out\":{},\"batches_in\":{},\"counters\":{{{}}}}}",
                       i ? "," : "", q(g.id), q(g.plugin), g.records_in, g.records_out, g.batches_in, counters);
  }
  out += "],\"channels\":[";
  for (std::size_t i = 0; i < s.channels.size(); ++i) {
    const auto& [n, c] = s.channels[i];
    out += fmt::format("{}{{\"name\":{},\"depth\":{},\"max_batches\":{},\"bytes\":{},\"max_bytes\":{},\"blocked_seconds\":{:.6f}}}",
                       i ? "," : "", q(n), c.depth, c.max_batches, c.bytes, c.max_bytes, static_cast<double>(c.blocked_ns) / 1e9);
  }
  return out + "]}";
}

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
};

MetricsServer::MetricsServer(const std::string& host, int port, std::function<runtime::Snapshot()> snapshot)
    : impl_(std::make_unique<Impl>()) {
  auto& srv = impl_->server;
  srv.Get("/metrics", [snapshot](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus_text(snapshot()), "text/plain; version=0.0.4");
  });
  srv.Get("/metrics.json", [snapshot](const httplib::Request&, httplib::Response& res) {
    res.set_content(snapshot_json(snapshot()), "application/json");
  });
  srv.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content(kDashboard, "text/html; charset=utf-8"); });
  port_ = port == 0 ? srv.bind_to_any_port(host) : (srv.bind_to_port(host, port) ? port : -1);
  if (port_ <= 0) throw std::runtime_error(fmt::format("metrics: cannot listen on {}:{}", host, port));
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
}

MetricsServer::~MetricsServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace flow::observability
