# flow_add_plugin(<name> SOURCES <src>... [TESTS <test-src>...] [LIBS <target>...])
#
# Builds plugins/<name> as libflow-<name>.so next to the other plugins, installs it, and, when
# TESTS are given, one GoogleTest executable <name>_test that links the plugin's objects and the
# stage harness. When the plugin folder has a README.md, a test checks that its generated options
# block matches the declared schema (`scripts/update-plugin-readmes` regenerates it).
function(flow_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;TESTS;LIBS" ${ARGN})
  set(obj flow-${name}-objects)
  add_library(${obj} OBJECT ${ARG_SOURCES})
  target_link_libraries(${obj} PUBLIC flow::sdk ${ARG_LIBS} PRIVATE flow_warnings)
  target_include_directories(${obj} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})

  add_library(flow-${name} MODULE $<TARGET_OBJECTS:${obj}>)
  target_link_libraries(flow-${name} PRIVATE ${obj})
  set_target_properties(flow-${name} PROPERTIES
    PREFIX "lib" OUTPUT_NAME "flow-${name}"
    LIBRARY_OUTPUT_DIRECTORY ${FLOW_PLUGIN_OUTPUT_DIR})
  install(TARGETS flow-${name} LIBRARY DESTINATION ${FLOW_PLUGIN_INSTALL_DIR})
  set_property(GLOBAL APPEND PROPERTY FLOW_PLUGINS flow-${name})

  if(FLOW_BUILD_TESTS AND ARG_TESTS)
    add_executable(${name}_test ${ARG_TESTS})
    target_include_directories(${name}_test PRIVATE ${CMAKE_SOURCE_DIR}/tests)  # tests/support
    target_link_libraries(${name}_test PRIVATE ${obj} flow::testing GTest::gtest_main GTest::gmock flow_warnings)
    target_compile_definitions(${name}_test PRIVATE
      FLOW_PLUGIN_DIR="${FLOW_PLUGIN_OUTPUT_DIR}"
      FLOW_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
      FLOW_FLOWCTL="$<TARGET_FILE:flowctl>")
    add_dependencies(${name}_test flow-${name} flowctl)
    # The conformance suite for FLOW_CONFORMANCE_TESTS(FLOW_PLUGIN_FILE, "<sample config>").
    target_link_libraries(${name}_test PRIVATE flow::conformance)
    target_compile_definitions(${name}_test PRIVATE FLOW_PLUGIN_FILE="$<TARGET_FILE:flow-${name}>")
    gtest_discover_tests(${name}_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS plugin)
  endif()
  if(FLOW_BUILD_TESTS AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/README.md)
    add_test(NAME ${name}.readme-options
      COMMAND ${CMAKE_SOURCE_DIR}/scripts/update-plugin-readmes --check
              --flowctl $<TARGET_FILE:flowctl> --plugin-path ${FLOW_PLUGIN_OUTPUT_DIR}
              ${CMAKE_CURRENT_SOURCE_DIR}/README.md ${name})
    set_tests_properties(${name}.readme-options PROPERTIES LABELS "plugin;docs")
  endif()
endfunction()
