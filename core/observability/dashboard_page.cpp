// The dashboard page: hand-written SVG and JavaScript, served by flowctl itself (no CDN, no
// vendored library). It reads /graph.json at start (and again when the stages change: a
// reload), /metrics.json every second, and a tap on the
// dashboard stage (/tap, Server-Sent Events): numeric columns get a chart per column with one
// line per key (sensor_id), other columns a table of the latest values per key.
#include "observability/dashboard_page.hpp"

namespace flow::observability {

const char* const kDashboardHtml = R"HTML(<!doctype html>
<html><head><meta charset="utf-8"><title>Flow</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.2em 2em;color:#222;background:#fafafa}
h1{margin:.2em 0}h2{font-size:1.05em;margin:1.2em 0 .4em}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:10em}
.card b{display:block;font-size:1.6em}.grid{display:flex;flex-wrap:wrap;gap:1em}
.chart{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.4em}
table{border-collapse:collapse;background:#fff}td,th{padding:.25em .7em;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}.legend span{margin-right:.8em;white-space:nowrap}
.sw{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:middle}
svg text{font:11px system-ui,sans-serif;fill:#555}
</style></head><body>
<h1 id="title">Flow</h1><div id="meta"></div>
<div class="cards">
 <div class="card">readings/s<b id="rate">-</b></div>
 <div class="card">invalid/s<b id="invalid">-</b><div id="reasons"></div></div>
 <div class="card">latest archive<b id="archive">-</b><div id="archive-rows"></div></div>
 <div class="card">tap<b id="tapstate">-</b><div id="dropped"></div></div>
</div>
<h2>Pipeline</h2><svg id="graph" width="900" height="120"></svg>
<h2 id="charts-title">Live data</h2><div id="charts" class="grid"></div>
<h2>Latest values</h2><table id="latest"></table>
<h2>Stages</h2><table id="stages"></table>
<script>
'use strict';
const WINDOW_S = 300, W = 440, H = 180, PAD = 34, started = Date.now()/1000;
const palette = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf'];
const series = {};   // column -> key -> [[t, v], ...]
const latest = {};   // key -> row
let graph = null, last = null, keyCol = null, dropped = 0;
const el = id => document.getElementById(id);
const ns = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, parent){const e=document.createElementNS(ns,tag);for(const k in attrs)e.setAttribute(k,attrs[k]);if(parent)parent.appendChild(e);return e;}
function color(key){let h=0;for(const c of String(key))h=(h*31+c.charCodeAt(0))>>>0;return palette[h%palette.length];}
function chooseKey(row){
  const cols=Object.keys(row);
  return cols.find(c=>c==='key'||c==='id'||/_id$/.test(c)) || cols.find(c=>typeof row[c]==='string') || null;
}
function numeric(col,v){return typeof v==='number' && col!==keyCol && !/time|_at$|^ts$|offset|partition/.test(col);}
function onRow(row){
  if(keyCol===null) keyCol = chooseKey(row) || '';
  const key = keyCol ? String(row[keyCol]) : 'all';
  const t = Date.now()/1000;
  latest[key] = row;
  for(const [c,v] of Object.entries(row)){
    if(!numeric(c,v)) continue;
    const byKey = series[c] || (series[c] = {});
    const pts = byKey[key] || (byKey[key] = []);
    // One point per key per 250 ms bucket keeps long windows small. The bucket, not the last
    // point's time: rows that keep coming faster than that would otherwise move one point forever.
    const bucket = Math.floor(t*4);
    if(pts.length && pts[pts.length-1][2] === bucket) pts[pts.length-1] = [t, v, bucket]; else pts.push([t, v, bucket]);
  }
}
function drawCharts(){
  // The x axis spans what has been seen, from 30 s up to WINDOW_S, so a fresh page is readable.
  const now = Date.now()/1000, box = el('charts'), span = Math.min(WINDOW_S, Math.max(30, now-started));
  for(const [col, byKey] of Object.entries(series)){
    let div = document.getElementById('chart-'+col);
    if(!div){div=document.createElement('div');div.className='chart';div.id='chart-'+col;box.appendChild(div);}
    let lo=Infinity, hi=-Infinity;
    for(const pts of Object.values(byKey)){
      while(pts.length && pts[0][0] < now-WINDOW_S) pts.shift();
      for(const p of pts){lo=Math.min(lo,p[1]);hi=Math.max(hi,p[1]);}
    }
    if(!isFinite(lo)){lo=0;hi=1;} if(hi===lo){hi+=1;lo-=1;}
    const x = t => PAD + (t-(now-span))/span*(W-PAD-6), y = v => H-18 - (v-lo)/(hi-lo)*(H-30);
    div.textContent='';
    const title=document.createElement('div');title.textContent=col+(keyCol?' per '+keyCol:'');title.style.fontWeight='600';div.appendChild(title);
    const s = svg('svg',{width:W,height:H,class:'plot','data-column':col},div);
    svg('line',{x1:PAD,y1:H-18,x2:W-6,y2:H-18,stroke:'#bbb'},s);
    for(const v of [lo,(lo+hi)/2,hi]){const tx=svg('text',{x:2,y:y(v)+4},s);tx.textContent=(+v.toFixed(1)).toString();}
    for(let i=4;i>=0;i--){const ago=span*i/4, tx=svg('text',{x:x(now-ago)-(i?10:24),y:H-4},s);tx.textContent=i?'-'+(ago>=120?Math.round(ago/60)+'m':Math.round(ago)+'s'):'now';}
    const legend=document.createElement('div');legend.className='legend';
    const keys = Object.keys(byKey).sort((a,b)=>(+a)-(+b)||a.localeCompare(b));
    for(const k of keys){
      const pts = byKey[k]; if(!pts.length) continue;
      svg('polyline',{class:'series','data-key':k,'data-column':col,'data-points':pts.length,fill:'none',stroke:color(k),'stroke-width':1.3,
        points:pts.map(p=>x(p[0]).toFixed(1)+','+y(p[1]).toFixed(1)).join(' ')},s);
      const sp=document.createElement('span');sp.innerHTML='<i class="sw"></i>';sp.firstChild.style.background=color(k);sp.appendChild(document.createTextNode(k));legend.appendChild(sp);
    }
    div.appendChild(legend);
  }
  const rows = Object.entries(latest).sort((a,b)=>(+a[0])-(+b[0])||a[0].localeCompare(b[0]));
  const t = el('latest'); t.textContent='';
  if(rows.length){
    const cols = Object.keys(rows[0][1]);
    const hr = t.insertRow(); for(const c of cols){const th=document.createElement('th');th.textContent=c;hr.appendChild(th);}
    for(const [k,r] of rows.slice(0,50)){const tr=t.insertRow();for(const c of cols)tr.insertCell().textContent=cell(c,r[c]);}
  }
}
function cell(col,v){
  if(v===null) return 'null';
  if(typeof v!=='number') return v;
  if(/time/.test(col) && v>1e14) return new Date(v/1000).toISOString().replace('T',' ').replace('.000Z','Z');  // microseconds
  return +v.toFixed(3);
}
function fillOf(c){return c?Math.min(1,Math.max(c.depth/c.max_batches, c.max_bytes?c.bytes/c.max_bytes:0)):0;}
function drawGraph(s){
  if(!graph) return;
  const g = el('graph'); g.textContent='';
  const depth = {}; for(const [id] of graph.stages) depth[id]=0;
  for(let i=0;i<graph.stages.length;i++) for(const e of graph.edges) depth[e.to]=Math.max(depth[e.to],depth[e.from]+1);
  const rows = {}, pos = {};
  for(const [id] of graph.stages){const d=depth[id];rows[d]=(rows[d]||0)+1;pos[id]=[20+d*150, 10+(rows[d]-1)*50];}
  g.setAttribute('height', 20+Math.max(...Object.values(rows))*50);
  g.setAttribute('width', 60+Math.max(...Object.values(depth))*150+120);
  for(const e of graph.edges){
    const c = s.channels.find(c=>c.name==='->'+e.to), f = fillOf(c), a = pos[e.from], b = pos[e.to];
    const col = f>0.9?'#d53':f>0.5?'#e90':'#3a7';
    svg('line',{x1:a[0]+120,y1:a[1]+16,x2:b[0],y2:b[1]+16,stroke:col,'stroke-width':2+f*6,class:'edge','data-from':e.from,'data-to':e.to,'data-fill':f.toFixed(2)},g);
    const tx=svg('text',{x:(a[0]+120+b[0])/2-12,y:(a[1]+b[1])/2+12},g);tx.textContent=Math.round(f*100)+'%'+(e.output?' '+e.output:'');
  }
  for(const [id,plugin] of graph.stages){
    const [x,y]=pos[id];
    svg('rect',{x,y,width:120,height:32,rx:5,fill:id===graph.dashboard?'#e8f3ff':'#fff',stroke:'#888'},g);
    const t=svg('text',{x:x+6,y:y+13},g);t.textContent=id;t.style.fontWeight='600';
    const p=svg('text',{x:x+6,y:y+27},g);p.textContent=plugin;
  }
}
function drawMetrics(s){
  el('title').textContent = 'Flow: ' + s.pipeline;
  el('meta').textContent = 'cycle ' + (s.cycle+1) + ', up ' + s.uptime_seconds.toFixed(0) + ' s';
  const dt = last ? s.uptime_seconds - last.uptime_seconds : 0;
  const rate = (now, prev) => dt>0 && prev!==undefined ? (now-prev)/dt : 0;
  const ds = s.stages.find(x=>x.id===graph.dashboard), dp = last && last.stages.find(x=>x.id===graph.dashboard);
  if(ds) el('rate').textContent = Math.round(rate(ds.records_out, dp&&dp.records_out)).toLocaleString();
  let inv = 0; const reasons = [];
  for(const st of s.stages){
    const p = last && last.stages.find(x=>x.id===st.id);
    for(const [k,v] of Object.entries(st.counters)){
      if(!/reason=/.test(k)) continue;  // the validators' rejections, by reason
      const r = rate(v, p && p.counters[k]); inv += r;
      reasons.push(st.id+' '+(k.match(/"([^"]*)"/)||[,k])[1]+': '+r.toFixed(1)+'/s ('+v+')');
    }
  }
  el('invalid').textContent = inv.toFixed(1); el('reasons').textContent = reasons.join(' · ');
  const arch = s.stages.filter(x=>'rows_archived' in x.counters);
  if(arch.length){
    el('archive').textContent = arch.map(a=>a.counters.archives||0).reduce((a,b)=>a+b) + ' files';
    el('archive-rows').textContent = arch.map(a=>a.id+': '+a.counters.rows_archived+' rows').join(', ');
  }
  const t = el('stages'); t.textContent='';
  const hr=t.insertRow(); for(const h of ['stage','plugin','in','in/s','out','out/s']){const th=document.createElement('th');th.textContent=h;hr.appendChild(th);}
  for(const st of s.stages){const p = last && last.stages.find(x=>x.id===st.id);const tr=t.insertRow();
    for(const v of [st.id,st.plugin,st.records_in.toLocaleString(),Math.round(rate(st.records_in,p&&p.records_in)),st.records_out.toLocaleString(),Math.round(rate(st.records_out,p&&p.records_out))]) tr.insertCell().textContent=v;}
  drawGraph(s);
  last = s;
}
const idsOf = list => list.slice().sort().join('\n');
async function tick(){
  try{
    const s = await (await fetch('metrics.json')).json();
    // A reload that adds or removes stages: the graph is read again.
    if(idsOf(s.stages.map(x=>x.id)) !== idsOf(graph.stages.map(x=>x[0]))) graph = await (await fetch('graph.json')).json();
    drawMetrics(s);
  }catch(e){ el('meta').textContent='pipeline not reachable: '+e; }
  drawCharts();
}
async function start(){
  graph = await (await fetch('graph.json')).json();
  el('charts-title').textContent = 'Live data from ' + graph.dashboard;
  const es = new EventSource('tap?stage=' + encodeURIComponent(graph.dashboard));
  es.onopen = () => el('tapstate').textContent = 'live';
  es.onerror = () => el('tapstate').textContent = 'reconnecting';
  es.onmessage = m => onRow(JSON.parse(m.data));
  es.addEventListener('dropped', m => { dropped += +m.data; el('dropped').textContent = dropped + ' samples skipped (page slower than the data)'; });
  tick(); setInterval(tick, 1000);
}
start();
</script></body></html>
)HTML";

}  // namespace flow::observability
