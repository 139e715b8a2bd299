# `flowctl broker` runs librdkafka's mock cluster, through the Kafka plugins' shared header.
target_link_libraries(flowctl PRIVATE PkgConfig::RDKAFKA)
target_include_directories(flowctl PRIVATE ${CMAKE_SOURCE_DIR}/plugins/kafka-common)
