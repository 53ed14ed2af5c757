package interruption_test

import (
	"errors"
	"fmt"

	"github.com/fleetpack/fleetpack/interruption"
)

func ExampleParse() {
	body := []byte(`{
	  "version": "0",
	  "id": "1e5527d7-bb36-4607-3370-4164db56a40e",
	  "detail-type": "EC2 Spot Instance Interruption Warning",
	  "source": "aws.ec2",
	  "account": "123456789012",
	  "time": "2026-08-21T10:00:00Z",
	  "region": "us-east-1",
	  "resources": ["arn:aws:ec2:us-east-1b:instance/i-0b662ef9931388ba0"],
	  "detail": {"instance-id": "i-0b662ef9931388ba0", "instance-action": "terminate"}
	}`)
	m, err := interruption.Parse(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Kind, m.InstanceIDs, m.Deadline.Format("15:04:05"))

	_, err = interruption.Parse([]byte(`{"version":"0","id":"abc","time":"2026-08-21T10:00:00Z","source":"aws.ec2","detail-type":"EC2 AMI State Change","detail":{}}`))
	fmt.Println(errors.Is(err, interruption.ErrUnsupported), err)
	// Output:
	// spot-interruption [i-0b662ef9931388ba0] 10:02:00
	// true interruption message "abc" (aws.ec2 / EC2 AMI State Change): detail-type: not an event fleetpack handles
}
