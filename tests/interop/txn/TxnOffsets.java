// A Java transactional producer that needs only the transaction coordinator (no records, so no
// transaction markers): initTransactions, sendOffsetsToTransaction + abort, then + commit, then
// a second producer with the same transactional.id fences the first.
// Usage: TxnOffsets <bootstrap> <transactional.id> <group> <topic>
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnOffsets {
    static KafkaProducer<String, String> producer(String bootstrap, String id) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("transactional.id", id);
        p.put("transaction.timeout.ms", "60000");
        p.put("max.block.ms", "30000");
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    public static void main(String[] args) {
        String bootstrap = args[0], id = args[1], group = args[2], topic = args[3];
        TopicPartition tp = new TopicPartition(topic, 0);
        ConsumerGroupMetadata meta = new ConsumerGroupMetadata(group);
        KafkaProducer<String, String> first = producer(bootstrap, id);
        first.initTransactions();
        System.out.println("INIT");
        first.beginTransaction();
        first.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(42)), meta);
        first.abortTransaction();
        System.out.println("ABORTED");
        first.beginTransaction();
        first.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(7)), meta);
        first.commitTransaction();
        System.out.println("COMMITTED");
        KafkaProducer<String, String> second = producer(bootstrap, id);
        second.initTransactions();
        System.out.println("SECOND INIT");
        try {
            first.beginTransaction();
            first.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(99)), meta);
            first.commitTransaction();
            System.out.println("NOT FENCED");
        } catch (ProducerFencedException e) {
            System.out.println("FENCED");
        }
        first.close();
        second.close();
    }
}
