# flow_add_plugin() inside the Flow tree: the installed SDK's definition (FlowSDKPlugin.cmake),
# plus what only the tree has: warnings as errors, tests/support, flowctl built first, and a test
# that the plugin README's generated options block matches the declared schema
# (`scripts/update-plugin-readmes` regenerates it).
set(FlowSDK_FLOWCTL "$<TARGET_FILE:flowctl>")

function(flow_plugin_extras name tests)
  target_link_libraries(flow-${name}-objects PRIVATE flow_warnings)
  set_property(GLOBAL APPEND PROPERTY FLOW_PLUGINS flow-${name})
  if(FLOW_BUILD_TESTS AND tests)
    target_include_directories(${name}_test PRIVATE ${CMAKE_SOURCE_DIR}/tests)  # tests/support
    target_link_libraries(${name}_test PRIVATE GTest::gmock flow_warnings)
    add_dependencies(${name}_test flowctl)
  endif()
  if(FLOW_BUILD_TESTS AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/README.md)
    add_test(NAME ${name}.readme-options
      COMMAND ${CMAKE_SOURCE_DIR}/scripts/update-plugin-readmes --check
              --flowctl $<TARGET_FILE:flowctl> --plugin-path ${FLOW_PLUGIN_OUTPUT_DIR}
              ${CMAKE_CURRENT_SOURCE_DIR}/README.md ${name})
    set_tests_properties(${name}.readme-options PROPERTIES LABELS "plugin;docs")
  endif()
endfunction()

include(${CMAKE_CURRENT_LIST_DIR}/FlowSDKPlugin.cmake)
