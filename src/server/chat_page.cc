// Placeholder until the page's sources are embedded at build time.
#include "server/chat_page.h"

namespace gemma_local::server {

std::string_view ChatPageHtml() {
  return "<!doctype html><html><head><meta charset=\"utf-8\"><title>gemma-local</title></head>"
         "<body><p>gemma-local chat page</p></body></html>";
}

}  // namespace gemma_local::server
