// The reference producer for the codec and transaction tests: Apache Kafka's own Java client
// (kafka-clients from the local Kafka install). Reads records from stdin, one per line:
// "C<TAB>value" (committed) or "A<TAB>value" (aborted; only in transactional mode). Arguments:
// bootstrap servers, topic, compression.type (none|gzip|snappy|lz4|zstd), transactional (true|false).
// In transactional mode each run of lines of the same kind is one transaction, committed or aborted.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class Produce {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0], topic = args[1], compression = args[2];
    boolean transactional = Boolean.parseBoolean(args[3]);
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
    props.put(ProducerConfig.LINGER_MS_CONFIG, "20");
    props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    if (transactional) props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "streamwarden-test-" + topic);
    List<String[]> lines = new ArrayList<>();
    try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
      for (String line; (line = in.readLine()) != null; ) {
        int tab = line.indexOf('\t');
        lines.add(new String[] {line.substring(0, tab), line.substring(tab + 1)});
      }
    }
    int committed = 0, aborted = 0;
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
      if (transactional) producer.initTransactions();
      int i = 0;
      while (i < lines.size()) {
        String kind = lines.get(i)[0];
        if (transactional) producer.beginTransaction();
        int j = i;
        for (; j < lines.size() && lines.get(j)[0].equals(kind); j++) {
          producer.send(new ProducerRecord<>(topic, 0, "k" + j, lines.get(j)[1]));
        }
        if (transactional && kind.equals("A")) {
          producer.flush();
          producer.abortTransaction();
          aborted += j - i;
        } else {
          if (transactional) producer.commitTransaction();
          committed += j - i;
        }
        i = j;
      }
      producer.flush();
    }
    System.out.println("{\"committed\":" + committed + ",\"aborted\":" + aborted + "}");
  }
}
