"""One syncable record shaped like our MedicationDispensed event (its payload fields, plus
text filling it to the size of our event's canonical JSON: the bench sets that size)."""

from django.db import models
from morango.models.core import SyncableModel
from morango.models.manager import SyncableModelManager

PROFILE = "dmedbench"


class Dispense(SyncableModel):
    morango_profile = PROFILE
    morango_model_name = "dispense"

    dataset = models.CharField(max_length=40)  # the root certificate's id: the partition
    prescription_id = models.CharField(max_length=26)
    item_no = models.IntegerField()
    quantity = models.IntegerField()
    product = models.CharField(max_length=200)
    batch = models.CharField(max_length=64)
    expiry = models.DateField()
    dispensed_at = models.DateTimeField()
    facility_id = models.CharField(max_length=26)
    mode = models.CharField(max_length=20)
    pharmacist = models.CharField(max_length=200)
    note = models.TextField(blank=True)

    objects = SyncableModelManager()

    def calculate_source_id(self, *args, **kwargs):
        return None  # a random id, as our events have

    def calculate_partition(self, *args, **kwargs):
        return f"{self.dataset}:dispense"
