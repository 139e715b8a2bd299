# flow_add_plugin(): the one definition, for plugins built against an installed SDK
# (find_package(FlowSDK) includes this file) and for the built-in plugins (the tree's
# sdk/cmake/FlowPlugin.cmake sets a few variables and a flow_plugin_extras() hook, then includes
# this file).
#
# flow_add_plugin(<name> SOURCES <src>... [TESTS <test-src>...] [LIBS <target>...])
#
# Builds libflow-<name>.so into ${CMAKE_BINARY_DIR}/lib/flow/plugins (FLOW_PLUGIN_OUTPUT_DIR),
# installs it into <prefix>/lib/flow/plugins, and, when TESTS are given, a GoogleTest executable
# <name>_test linking the plugin's objects and flow::testing (harness, conformance suite,
# GoogleTest), with
#   FLOW_PLUGIN_FILE  the built plugin library (for FLOW_CONFORMANCE_TESTS)
#   FLOW_PLUGIN_DIR   the directory it is in (for flowctl --plugin-path)
#   FLOW_FLOWCTL      the installed flowctl
#   FLOW_SOURCE_DIR   the plugin project's source directory (FLOW_PROJECT_SOURCE_DIR)
include_guard(GLOBAL)
include(GNUInstallDirs)

if(NOT DEFINED FLOW_PLUGIN_OUTPUT_DIR)
  set(FLOW_PLUGIN_OUTPUT_DIR ${CMAKE_BINARY_DIR}/lib/flow/plugins)
endif()
if(NOT DEFINED FLOW_PLUGIN_INSTALL_DIR)
  set(FLOW_PLUGIN_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/flow/plugins)
endif()
if(NOT DEFINED FLOW_PROJECT_SOURCE_DIR)
  set(FLOW_PROJECT_SOURCE_DIR ${CMAKE_SOURCE_DIR})
endif()

function(flow_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;TESTS;LIBS" ${ARGN})
  if(NOT name MATCHES "^([a-z0-9]+(-[a-z0-9]+)*\\.)*[a-z0-9]+(-[a-z0-9]+)*$")
    message(FATAL_ERROR "flow_add_plugin: '${name}' is not a kebab-case plugin name (third-party plugins: 'acme.word-count')")
  endif()
  set(obj flow-${name}-objects)
  add_library(${obj} OBJECT ${ARG_SOURCES})
  set_target_properties(${obj} PROPERTIES POSITION_INDEPENDENT_CODE ON CXX_EXTENSIONS OFF)
  target_compile_features(${obj} PUBLIC cxx_std_20)
  # GCC 12 gives false -Wrestrict warnings inside libstdc++ string code.
  target_compile_options(${obj} PRIVATE -Wall -Wextra -Wpedantic -Wno-restrict)
  # The SDK is header-only: without these, every inline SDK call (Column::append_string, ...)
  # goes through the PLT and binds to whichever plugin was loaded first, and the compiler may
  # not inline a plugin's own functions into each other (ELF interposition).
  target_compile_options(${obj} PRIVATE -fvisibility-inlines-hidden -fno-semantic-interposition)
  target_link_libraries(${obj} PUBLIC flow::sdk ${ARG_LIBS})
  target_include_directories(${obj} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})

  add_library(flow-${name} MODULE $<TARGET_OBJECTS:${obj}>)
  target_link_libraries(flow-${name} PRIVATE ${obj})
  set_target_properties(flow-${name} PROPERTIES
    PREFIX "lib" OUTPUT_NAME "flow-${name}"
    LIBRARY_OUTPUT_DIRECTORY ${FLOW_PLUGIN_OUTPUT_DIR})
  install(TARGETS flow-${name} LIBRARY DESTINATION ${FLOW_PLUGIN_INSTALL_DIR})

  if(ARG_TESTS AND (NOT DEFINED FLOW_BUILD_TESTS OR FLOW_BUILD_TESTS))
    if(NOT TARGET GTest::gtest_main)
      find_package(GTest REQUIRED)
    endif()
    include(GoogleTest)
    add_executable(${name}_test ${ARG_TESTS})
    target_link_libraries(${name}_test PRIVATE ${obj} flow::testing flow::conformance GTest::gtest GTest::gtest_main)
    target_compile_options(${name}_test PRIVATE -Wall -Wextra -Wpedantic -Wno-restrict)
    target_compile_definitions(${name}_test PRIVATE
      FLOW_PLUGIN_FILE="$<TARGET_FILE:flow-${name}>"
      FLOW_PLUGIN_DIR="${FLOW_PLUGIN_OUTPUT_DIR}"
      FLOW_FLOWCTL="${FlowSDK_FLOWCTL}"
      FLOW_SOURCE_DIR="${FLOW_PROJECT_SOURCE_DIR}")
    add_dependencies(${name}_test flow-${name})
    gtest_discover_tests(${name}_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS plugin)
  endif()
  # The Flow tree adds its warnings-as-errors, test support and README drift check here.
  if(COMMAND flow_plugin_extras)
    flow_plugin_extras(${name} "${ARG_TESTS}")
  endif()
endfunction()
