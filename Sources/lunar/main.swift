print("lunar")
