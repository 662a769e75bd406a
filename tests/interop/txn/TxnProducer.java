// A transactional producer on the real Kafka Java client (kafka-clients from Maven Central), for
// tests/interop/test_transactions.py: transaction i (0-based) sends `perTxn` records over the
// topic's partitions (record j to partition j % partitions, key "k<i>-<j>", value "t<i>-<j>"),
// then commits when i is even and aborts when i is odd. One line per transaction on stdout:
// "COMMIT <i>" or "ABORT <i>", then "DONE".
//
// usage: TxnProducer <bootstrap> <topic> <partitions> <transactional.id> <transactions> <perTxn>
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], txnId = args[3];
        int partitions = Integer.parseInt(args[2]);
        int transactions = Integer.parseInt(args[4]), perTxn = Integer.parseInt(args[5]);
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        // Small batches: several in-flight batches per partition and transaction.
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, "512");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            for (int i = 0; i < transactions; i++) {
                producer.beginTransaction();
                for (int j = 0; j < perTxn; j++) {
                    producer.send(new ProducerRecord<>(topic, j % partitions, "k" + i + "-" + j, "t" + i + "-" + j));
                }
                if (i % 2 == 0) {
                    producer.commitTransaction();
                    System.out.println("COMMIT " + i);
                } else {
                    producer.flush();
                    producer.abortTransaction();
                    System.out.println("ABORT " + i);
                }
                System.out.flush();
            }
        }
        System.out.println("DONE");
    }
}
