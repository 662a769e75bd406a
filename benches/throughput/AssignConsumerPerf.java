import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Consume throughput without a consumer group: the measurement of Kafka's ConsumerPerformance
 * (same consumer settings: 1 MB max.partition.fetch.bytes, 2 MB socket receive buffer,
 * check.crcs=false, from the earliest offset), but with assign() instead of subscribe(), so it
 * needs no group coordinator (chronik has no consumer groups until issue 3 lands). Used for every
 * target alike.
 *
 * Usage: java -cp "kafka-tools/lib/*:classes" AssignConsumerPerf BOOTSTRAP TOPIC RECORDS TIMEOUT_MS
 * Prints one line:
 *   RESULT records=N bytes=B fetch_ms=T mb_per_s=X records_per_s=Y
 * where the clock starts at the first poll (after assignment) and stops at the last record.
 */
public class AssignConsumerPerf {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: AssignConsumerPerf BOOTSTRAP TOPIC RECORDS TIMEOUT_MS");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        long want = Long.parseLong(args[2]);
        long timeoutMs = Long.parseLong(args[3]);

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, "1048576");
        props.put(ConsumerConfig.RECEIVE_BUFFER_CONFIG, "2097152");
        props.put(ConsumerConfig.CHECK_CRCS_CONFIG, "false");
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "assign-consumer-perf");

        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> tps = new ArrayList<>();
            long deadline = System.currentTimeMillis() + timeoutMs;
            while (tps.isEmpty()) {
                List<PartitionInfo> parts = consumer.partitionsFor(topic, Duration.ofSeconds(10));
                if (parts != null) {
                    for (PartitionInfo p : parts) {
                        tps.add(new TopicPartition(topic, p.partition()));
                    }
                }
                if (tps.isEmpty()) {
                    if (System.currentTimeMillis() > deadline) {
                        System.err.println("no partitions for topic " + topic);
                        System.exit(1);
                    }
                    Thread.sleep(200);
                }
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);

            long records = 0;
            long bytes = 0;
            long start = System.nanoTime();
            long last = start;
            long lastProgress = System.currentTimeMillis();
            while (records < want) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(100));
                if (batch.isEmpty()) {
                    if (System.currentTimeMillis() - lastProgress > timeoutMs) {
                        System.err.println("no progress for " + timeoutMs + " ms after " + records + " records");
                        break;
                    }
                    continue;
                }
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    records++;
                    bytes += r.serializedValueSize() + Math.max(0, r.serializedKeySize());
                }
                last = System.nanoTime();
                lastProgress = System.currentTimeMillis();
            }
            double secs = Math.max(1e-9, (last - start) / 1e9);
            System.out.printf("RESULT records=%d bytes=%d fetch_ms=%.1f mb_per_s=%.3f records_per_s=%.1f%n",
                records, bytes, secs * 1000, bytes / 1048576.0 / secs, records / secs);
            System.exit(records >= want ? 0 : 1);
        }
    }
}
