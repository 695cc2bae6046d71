// The chat page served at GET / : static files built into the binary (no files to deploy, nothing
// fetched from the network). The page talks to this server's own /v1/chat/completions.
#pragma once

#include <string_view>

namespace gemma_local::server {

// The page's HTML (self-contained: styles and script inline).
std::string_view ChatPageHtml();

}  // namespace gemma_local::server
