# Shipping flowctl like a tool: a man page generated from the CLI's own help (help2man, when
# found), bash completion, the flow@.service systemd template, and `cpack -G DEB` building one
# Debian package (flowctl, the built plugins, the SDK headers and CMake package).
include(GNUInstallDirs)

find_program(HELP2MAN help2man)
if(HELP2MAN)
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/flowctl.1
    COMMAND ${HELP2MAN} --no-info --no-discard-stderr --name "run and inspect Flow data pipelines"
            --version-string "flowctl ${PROJECT_VERSION}" -o ${CMAKE_BINARY_DIR}/flowctl.1 $<TARGET_FILE:flowctl>
    DEPENDS flowctl
    COMMENT "flowctl.1 from flowctl --help")
  add_custom_target(flowctl-man ALL DEPENDS ${CMAKE_BINARY_DIR}/flowctl.1)
  install(FILES ${CMAKE_BINARY_DIR}/flowctl.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()
install(FILES ${CMAKE_SOURCE_DIR}/packaging/flowctl.bash-completion
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME flowctl)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/flow@.service DESTINATION lib/systemd/system)

set(CPACK_PACKAGE_NAME flow)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Flow maintainers <flow@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Plugin-based data-flow framework: flowctl, built-in plugins and the plugin SDK")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
# Runtime libraries found by dpkg-shlibdeps from the installed binaries and plugins.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "kcat")
include(CPack)
