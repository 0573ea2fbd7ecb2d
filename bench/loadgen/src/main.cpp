#include <cstdio>
#include <exception>
#include <stdexcept>
#include <utility>

#include "options.hpp"
#include "runner.hpp"
#include "url.hpp"

int main(int argc, char** argv) {
  loadgen::Options options;
  try {
    if (!loadgen::parse_options(argc, argv, options)) return 0;
  } catch (const loadgen::OptionError& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 2;
  }
  loadgen::Url url;
  try {
    url = loadgen::parse_url(options.url);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 2;
  }
  try {
    loadgen::Runner runner(options, std::move(url));
    std::string result = runner.run();
    std::puts(result.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 1;
  }
}
