// The dashboard's HTML, JavaScript and SVG, compiled into flowctl (nothing fetched from a CDN).
#pragma once

namespace flow::observability {
extern const char* const kDashboardHtml;
}
